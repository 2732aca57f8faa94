"""Weight-averaging references (AveragedModel, update_bn). Writes swa.safetensors; see README.md.

A Linear(3, 4) -> BatchNorm1d(4) -> ReLU -> Linear(4, 2) network (f32, torch.manual_seed(0))
trained 4 steps by SGD(lr=0.1, momentum=0.9) on an MSE loss; after each step four averagers
take the model's weights. Then update_bn recomputes the SWA model's batch-norm statistics.
"""

import torch
from safetensors.torch import save_file
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from common import metadata, out_path

STEPS = 4
EMA_DECAY = 0.75


def net():
    return torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def put(tensors, prefix, state):
    for key, value in state.items():
        tensors[f"{prefix}.{key}"] = value.detach().clone().contiguous()


def generate():
    torch.manual_seed(0)
    model = net()
    xs = torch.randn(STEPS, 6, 3)
    ys = torch.randn(STEPS, 6, 2)
    bn_input = torch.randn(10, 3)
    tensors = {"train.x": xs, "train.y": ys, "update_bn.input": bn_input}
    put(tensors, "model.init", model.state_dict())
    ema = get_ema_multi_avg_fn(EMA_DECAY)
    averagers = {
        "swa": AveragedModel(model),
        "ema": AveragedModel(model, multi_avg_fn=ema),
        "swa_buffers": AveragedModel(model, use_buffers=True),
        "ema_buffers": AveragedModel(model, multi_avg_fn=ema, use_buffers=True),
    }
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, foreach=False)
    for k in range(STEPS):
        model.train()
        loss = torch.nn.functional.mse_loss(model(xs[k]), ys[k])
        opt.zero_grad()
        loss.backward()
        opt.step()
        put(tensors, f"model.step{k}", model.state_dict())
        for name, averaged in averagers.items():
            averaged.update_parameters(model)
            put(tensors, f"{name}.step{k}", averaged.state_dict())
    swa = averagers["swa"]
    loader = torch.utils.data.DataLoader(bn_input, batch_size=4)
    swa.eval()
    update_bn(loader, swa)
    put(tensors, "update_bn", swa.state_dict())
    tensors["update_bn.output"] = swa(bn_input).detach()
    path = out_path("swa.safetensors")
    save_file(tensors, path, metadata=metadata())
    return path
