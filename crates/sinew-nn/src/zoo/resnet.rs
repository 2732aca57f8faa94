//! ResNets: torchvision's ImageNet ResNet-18/34/50 (names, shapes and initialisation as in
//! torchvision, so its checkpoints load as they are) and the CIFAR ResNet-20/32/56 of He et al.
//! (option A shortcuts: stride-2 subsampling and zero channels, no parameters).

use sinew_tensor::{PadMode, Result, Tensor};

use crate::layers::adaptive_pool::pooled_mean;
use crate::{
    AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Conv2dOptions, Linear, MaxPool2d, Module, PoolOptions,
    Sequential, Visit, init,
};

fn conv(cin: usize, cout: usize, k: usize, stride: usize, padding: usize) -> Result<Conv2d> {
    let c = Conv2d::with_options(
        cin,
        cout,
        (k, k),
        Conv2dOptions::default()
            .stride(stride)
            .padding(padding)
            .bias(false),
    )?;
    // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu").
    init::kaiming_normal_(&c.weight.value(), 0.0, init::FanMode::FanOut, "relu")?;
    Ok(c)
}

/// The 1x1 convolution + batch norm that matches a shortcut's shape (torchvision's
/// `downsample`).
fn downsample(cin: usize, cout: usize, stride: usize) -> Result<Sequential> {
    Ok(Sequential::new()
        .append(conv(cin, cout, 1, stride, 0)?)
        .append(BatchNorm2d::new(cout)?))
}

/// The shortcut of a CIFAR block: identity, or option A (every other pixel, zero channels).
enum Shortcut {
    Identity,
    Projection(Sequential),
    PadChannels { stride: usize, extra: usize },
}

impl Shortcut {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Shortcut::Identity => Ok(x.clone()),
            Shortcut::Projection(m) => m.forward(x),
            Shortcut::PadChannels { stride, extra } => {
                let (h, w) = (x.dims()[2], x.dims()[3]);
                let sub = x.slice(2, 0, h, *stride)?.slice(3, 0, w, *stride)?;
                let half = extra / 2;
                sub.pad(
                    &[(half, extra - half), (0, 0), (0, 0)],
                    PadMode::Constant(0.0),
                )
            }
        }
    }
}

/// ResNet's basic block: two 3x3 convolutions with batch norm, plus the shortcut.
pub struct BasicBlock {
    /// 3x3, carries the stride.
    pub conv1: Conv2d,
    /// After conv1.
    pub bn1: BatchNorm2d,
    /// 3x3.
    pub conv2: Conv2d,
    /// After conv2.
    pub bn2: BatchNorm2d,
    shortcut: Shortcut,
}

impl BasicBlock {
    /// Output channels = `planes` (expansion 1).
    pub const EXPANSION: usize = 1;

    /// A block from `inplanes` to `planes` with a projection shortcut where shapes change.
    pub fn new(inplanes: usize, planes: usize, stride: usize) -> Result<Self> {
        let shortcut = if stride != 1 || inplanes != planes {
            Shortcut::Projection(downsample(inplanes, planes, stride)?)
        } else {
            Shortcut::Identity
        };
        BasicBlock::with_shortcut(inplanes, planes, stride, shortcut)
    }

    fn with_shortcut(
        inplanes: usize,
        planes: usize,
        stride: usize,
        shortcut: Shortcut,
    ) -> Result<Self> {
        Ok(BasicBlock {
            conv1: conv(inplanes, planes, 3, stride, 1)?,
            bn1: BatchNorm2d::new(planes)?,
            conv2: conv(planes, planes, 3, 1, 1)?,
            bn2: BatchNorm2d::new(planes)?,
            shortcut,
        })
    }
}

impl Module for BasicBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        let out = self.conv2.forward(&out)?;
        // relu(bn2(out) + shortcut(x)) with the sum and the ReLU in batch norm's output pass
        // (the shortcut therefore runs before bn2).
        self.bn2.forward_add_relu(&out, &self.shortcut.apply(x)?)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("conv1", &self.conv1);
        v.child("bn1", &self.bn1);
        v.child("conv2", &self.conv2);
        v.child("bn2", &self.bn2);
        if let Shortcut::Projection(m) = &self.shortcut {
            v.child("downsample", m);
        }
    }
}

/// ResNet's bottleneck block (torchvision's v1.5: the stride is on the 3x3 convolution):
/// 1x1 reduce, 3x3, 1x1 expand (x4), plus the shortcut.
pub struct Bottleneck {
    /// 1x1 reduce.
    pub conv1: Conv2d,
    /// After conv1.
    pub bn1: BatchNorm2d,
    /// 3x3, carries the stride.
    pub conv2: Conv2d,
    /// After conv2.
    pub bn2: BatchNorm2d,
    /// 1x1 expand.
    pub conv3: Conv2d,
    /// After conv3.
    pub bn3: BatchNorm2d,
    downsample: Option<Sequential>,
}

impl Bottleneck {
    /// Output channels = 4 x `planes`.
    pub const EXPANSION: usize = 4;

    /// A block from `inplanes` to `4 * planes`.
    pub fn new(inplanes: usize, planes: usize, stride: usize) -> Result<Self> {
        let out = planes * Self::EXPANSION;
        let downsample = if stride != 1 || inplanes != out {
            Some(downsample(inplanes, out, stride)?)
        } else {
            None
        };
        Ok(Bottleneck {
            conv1: conv(inplanes, planes, 1, 1, 0)?,
            bn1: BatchNorm2d::new(planes)?,
            conv2: conv(planes, planes, 3, stride, 1)?,
            bn2: BatchNorm2d::new(planes)?,
            conv3: conv(planes, out, 1, 1, 0)?,
            bn3: BatchNorm2d::new(out)?,
            downsample,
        })
    }
}

impl Module for Bottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        let out = self.bn2.forward_relu(&self.conv2.forward(&out)?)?;
        let out = self.conv3.forward(&out)?;
        let identity = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        // relu(bn3(out) + identity), the sum and the ReLU in batch norm's output pass.
        self.bn3.forward_add_relu(&out, &identity)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("conv1", &self.conv1);
        v.child("bn1", &self.bn1);
        v.child("conv2", &self.conv2);
        v.child("bn2", &self.bn2);
        v.child("conv3", &self.conv3);
        v.child("bn3", &self.bn3);
        if let Some(d) = &self.downsample {
            v.child("downsample", d);
        }
    }
}

/// torchvision's ImageNet ResNet: stem, four stages (`layer1`..`layer4`), pooling, `fc`.
pub struct ResNet {
    /// 7x7, stride 2.
    pub conv1: Conv2d,
    /// After conv1.
    pub bn1: BatchNorm2d,
    /// 3x3 max pool, stride 2.
    pub maxpool: MaxPool2d,
    /// The four stages.
    pub layers: [Sequential; 4],
    /// To 1x1.
    pub avgpool: AdaptiveAvgPool2d,
    /// The classifier (replace it to fine-tune on other classes).
    pub fc: Linear,
}

fn stage<B: Module + 'static>(
    blocks: usize,
    mut make: impl FnMut(usize) -> Result<B>,
) -> Result<Sequential> {
    let mut s = Sequential::new();
    for i in 0..blocks {
        s.push(Box::new(make(i)?));
    }
    Ok(s)
}

impl ResNet {
    fn new(bottleneck: bool, blocks: [usize; 4], num_classes: usize) -> Result<Self> {
        let expansion = if bottleneck {
            Bottleneck::EXPANSION
        } else {
            BasicBlock::EXPANSION
        };
        let mut inplanes = 64;
        let mut layers = Vec::new();
        for (i, (&n, planes)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
            let first_stride = if i == 0 { 1 } else { 2 };
            let cin = inplanes;
            let layer = if bottleneck {
                stage(n, |b| {
                    let (from, stride) = if b == 0 {
                        (cin, first_stride)
                    } else {
                        (planes * expansion, 1)
                    };
                    Bottleneck::new(from, planes, stride)
                })?
            } else {
                stage(n, |b| {
                    let (from, stride) = if b == 0 {
                        (cin, first_stride)
                    } else {
                        (planes, 1)
                    };
                    BasicBlock::new(from, planes, stride)
                })?
            };
            layers.push(layer);
            inplanes = planes * expansion;
        }
        let layers: [Sequential; 4] = layers
            .try_into()
            .map_err(|_| sinew_tensor::Error::invalid("ResNet", "four stages"))?;
        Ok(ResNet {
            conv1: conv(3, 64, 7, 2, 3)?,
            bn1: BatchNorm2d::new(64)?,
            maxpool: MaxPool2d::with_options(PoolOptions::new(3).stride(2).padding(1)),
            layers,
            avgpool: AdaptiveAvgPool2d::new((1, 1)),
            fc: Linear::new(512 * expansion, num_classes)?,
        })
    }
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        y = self.maxpool.forward(&y)?;
        for layer in &self.layers {
            y = layer.forward(&y)?;
        }
        self.fc.forward(&self.avgpool.forward(&y)?.flatten(1, -1)?)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("conv1", &self.conv1);
        v.child("bn1", &self.bn1);
        v.child("maxpool", &self.maxpool);
        for (i, layer) in self.layers.iter().enumerate() {
            v.child(&format!("layer{}", i + 1), layer);
        }
        v.child("avgpool", &self.avgpool);
        v.child("fc", &self.fc);
    }
}

/// ResNet-18 (11,689,512 parameters for 1000 classes).
pub fn resnet18(num_classes: usize) -> Result<ResNet> {
    ResNet::new(false, [2, 2, 2, 2], num_classes)
}

/// ResNet-34.
pub fn resnet34(num_classes: usize) -> Result<ResNet> {
    ResNet::new(false, [3, 4, 6, 3], num_classes)
}

/// ResNet-50 (25,557,032 parameters for 1000 classes).
pub fn resnet50(num_classes: usize) -> Result<ResNet> {
    ResNet::new(true, [3, 4, 6, 3], num_classes)
}

/// The CIFAR ResNet of He et al. (2016), depth `6n + 2`: a 3x3 stem of 16 channels, three
/// stages of `n` basic blocks (16, 32, 64 channels), global pooling and `fc`.
pub struct CifarResNet {
    /// 3x3 stem.
    pub conv1: Conv2d,
    /// After the stem.
    pub bn1: BatchNorm2d,
    /// The three stages.
    pub layers: [Sequential; 3],
    /// The classifier.
    pub fc: Linear,
}

impl CifarResNet {
    /// Depth `6n + 2` (20, 32, 44, 56, 110).
    pub fn new(depth: usize, num_classes: usize) -> Result<Self> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) {
            return Err(sinew_tensor::Error::invalid(
                "CifarResNet",
                format!("depth must be 6n + 2, got {depth}"),
            ));
        }
        let n = (depth - 2) / 6;
        let mut layers = Vec::new();
        let mut cin = 16;
        for (i, planes) in [16usize, 32, 64].into_iter().enumerate() {
            let from = cin;
            layers.push(stage(n, |b| {
                if b == 0 && i > 0 {
                    let shortcut = Shortcut::PadChannels {
                        stride: 2,
                        extra: planes - from,
                    };
                    BasicBlock::with_shortcut(from, planes, 2, shortcut)
                } else {
                    BasicBlock::new(planes, planes, 1)
                }
            })?);
            cin = planes;
        }
        let layers: [Sequential; 3] = layers
            .try_into()
            .map_err(|_| sinew_tensor::Error::invalid("CifarResNet", "three stages"))?;
        Ok(CifarResNet {
            conv1: conv(3, 16, 3, 1, 1)?,
            bn1: BatchNorm2d::new(16)?,
            layers,
            fc: Linear::new(64, num_classes)?,
        })
    }
}

impl Module for CifarResNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        for layer in &self.layers {
            y = layer.forward(&y)?;
        }
        self.fc.forward(&pooled_mean(&y, &[2, 3], false)?)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("conv1", &self.conv1);
        v.child("bn1", &self.bn1);
        for (i, layer) in self.layers.iter().enumerate() {
            v.child(&format!("layer{}", i + 1), layer);
        }
        v.child("fc", &self.fc);
    }
}

/// ResNet-20 for CIFAR (269,722 parameters for 10 classes, with the parameter-free "option A"
/// shortcuts of the paper).
pub fn resnet20(num_classes: usize) -> Result<CifarResNet> {
    CifarResNet::new(20, num_classes)
}

/// ResNet-32 for CIFAR.
pub fn resnet32(num_classes: usize) -> Result<CifarResNet> {
    CifarResNet::new(32, num_classes)
}

/// ResNet-56 for CIFAR.
pub fn resnet56(num_classes: usize) -> Result<CifarResNet> {
    CifarResNet::new(56, num_classes)
}
