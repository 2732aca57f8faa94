//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Sinew: train, evaluate and inspect neural networks.
#[derive(Parser, Debug)]
#[command(name = "sinew", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model (with no --dataset: an MLP on two spirals, no download needed).
    Train(TrainArgs),
    /// Evaluate saved weights on a dataset's test split.
    Eval(EvalArgs),
    /// Print the top classes for image files (PNG/JPEG) or CSV rows, with saved weights.
    Predict(PredictArgs),
    /// Print the layer table and parameter count of a model.
    Summary(SummaryArgs),
    /// Show where each dataset is looked for and whether it was found.
    Datasets(DataArgs),
    /// Convert weights between PyTorch's `torch.save` format and safetensors.
    Convert(ConvertArgs),
}

/// The models the CLI can build.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelName {
    /// Rosenblatt's perceptron (two classes, feature rows; trained by the perceptron rule).
    Perceptron,
    /// One linear layer (multinomial logistic regression).
    Logreg,
    /// Flatten, then two hidden ReLU layers.
    Mlp,
    /// LeNet-5 (28x28 grey inputs).
    Lenet5,
    /// ResNet-20 for CIFAR (32x32 colour inputs).
    Resnet20,
    /// torchvision's ResNet-18.
    Resnet18,
    /// torchvision's AlexNet (images smaller than 63x63 are resized to 64x64).
    Alexnet,
    /// VGG-11 with batch norm.
    Vgg11,
    /// VGG-16 with batch norm.
    Vgg16,
}

/// The datasets.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetName {
    /// Two interleaved spirals (generated, 2 classes).
    Spirals,
    /// XOR of the signs of two coordinates (generated, 2 classes).
    Xor,
    /// Two half moons (generated, 2 classes).
    Moons,
    /// y = sin(x) on [-pi, pi] (generated, regression).
    Sin,
    /// MNIST digits.
    Mnist,
    /// Fashion-MNIST.
    FashionMnist,
    /// CIFAR-10.
    Cifar10,
    /// CIFAR-100 (fine labels).
    Cifar100,
    /// Your CSV file (--data FILE.csv): numeric features, the target in the last column.
    Csv,
    /// Your images (--data DIR): DIR/<class>/*.png|jpg, or DIR/train/... and DIR/test/....
    Folder,
}

/// Numeric precision of training.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats throughout.
    F32,
    /// Mixed precision: autocast compute in f16 on a GPU (with loss scaling) or bf16 on the
    /// CPU, f32 master weights.
    Mixed,
}

/// Optimizers.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerName {
    /// Plain SGD.
    Sgd,
    /// SGD with momentum 0.9.
    Momentum,
    /// SGD with Nesterov momentum 0.9.
    Nesterov,
    /// Adagrad.
    Adagrad,
    /// RMSprop.
    Rmsprop,
    /// Adam.
    Adam,
    /// Adam with AMSGrad.
    Amsgrad,
    /// NAdam.
    Nadam,
    /// RAdam (rectified Adam).
    Radam,
    /// AdamW (decoupled weight decay).
    Adamw,
    /// Adadelta (its `--lr` scales the step; default 1).
    Adadelta,
    /// Adamax (Adam with the infinity norm).
    Adamax,
    /// Rprop (the gradient's sign and per-weight step sizes; no weight decay).
    Rprop,
    /// ASGD (averaged SGD).
    Asgd,
    /// Adafactor (factored second moments; decoupled weight decay).
    Adafactor,
    /// L-BFGS with the strong-Wolfe line search (default lr 1; several evaluations a batch: use
    /// large batches; no weight decay, mixed precision or distributed training).
    Lbfgs,
}

/// Learning-rate schedules (stepped per epoch, `one-cycle` and `cyclic` per batch).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleName {
    /// Halve every third of the epochs.
    Step,
    /// Multiply by 0.9 each epoch.
    Exponential,
    /// Keras' inverse-time decay, rate 0.5 per epoch.
    InverseTime,
    /// Cosine annealing to 0 over the run.
    Cosine,
    /// The 1cycle policy over the run, stepped per batch: up to `--lr` and down to 1/250000
    /// of it, cycling the momentum (or Adam's beta1) the other way where the optimizer has one.
    OneCycle,
    /// Smith's triangular cycles, stepped per batch: from `--lr` / 10 up to `--lr` over two
    /// epochs and back over two, cycling the momentum (or Adam's beta1) the other way where
    /// the optimizer has one.
    Cyclic,
    /// Divide by 10 when the validation loss stalls for 2 epochs.
    Plateau,
}

/// Where the data lives and how to read the user's own.
#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// Dataset root (default: $SINEW_DATA, else ../shared/data); the file for `--dataset csv`,
    /// the directory for `--dataset folder`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Side of the square images `--dataset folder` is resized to.
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// For `--dataset csv`: the target column holds real values (regression), not classes.
    #[arg(long)]
    pub regression: bool,
}

/// `sinew summary`.
#[derive(Args, Debug, Clone)]
pub struct SummaryArgs {
    /// The model and dataset.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where the data lives (for `csv` and `folder`, which are opened to size the model).
    #[command(flatten)]
    pub data: DataArgs,
}

/// A model and its input.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The model.
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ModelName,
    /// The dataset whose inputs and classes size the model.
    #[arg(long, value_enum, default_value = "spirals")]
    pub dataset: DatasetName,
}

/// `sinew train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The model and dataset.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where the data lives.
    #[command(flatten)]
    pub data: DataArgs,
    /// Passes over the training data.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Examples per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// The optimizer.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerName,
    /// Learning rate (default: 0.05 for SGD ones, 1 for Adadelta and L-BFGS, 0.01 for the
    /// others).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight decay (L2; decoupled for AdamW).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// A learning-rate schedule.
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleName>,
    /// Random augmentation of training images: a comma-separated list of flip, crop, jitter,
    /// rotate.
    #[arg(long)]
    pub augment: Option<String>,
    /// Fraction of the training data held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    /// Stop after this many epochs without a better validation loss (restores the best weights).
    #[arg(long)]
    pub early_stopping: Option<usize>,
    /// Clip each step's gradients to this total 2-norm (PyTorch's `clip_grad_norm_`).
    #[arg(long)]
    pub clip_grad_norm: Option<f64>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Numeric precision.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Data-loading threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Save a training checkpoint here after every epoch.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from the checkpoint in --checkpoint-dir.
    #[arg(long)]
    pub resume: bool,
    /// Train data-parallel as one rank of `mpirun -np N sinew train ...` (implied under
    /// mpirun): each rank reads its shard, gradients are averaged, rank 0 prints and saves.
    /// --batch-size is per rank, as in PyTorch. Needs the `mpi` feature for N > 1.
    #[arg(long)]
    pub distributed: bool,
    /// Write the training curves to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Save the trained weights here: safetensors, or PyTorch's `torch.save` format for a `.pt`
    /// or `.pth` path (`torch.load` reads it).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Use at most this many training examples (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Draw the training examples class-balanced, with replacement: each weighs the inverse of
    /// its class's count (PyTorch's `WeightedRandomSampler`), for imbalanced data.
    #[arg(long)]
    pub balanced: bool,
    /// Keep an exponential moving average of the weights with this decay, updated after every
    /// batch (0.999 is usual; PyTorch's `AveragedModel(model, multi_avg_fn=
    /// get_ema_multi_avg_fn(decay), use_buffers=True)`). Its test accuracy is printed too, and
    /// --save writes the averaged weights; --checkpoint-dir keeps the average for --resume.
    #[arg(long)]
    pub ema: Option<f64>,
}

/// `sinew eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// The model and dataset.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where the data lives.
    #[command(flatten)]
    pub data: DataArgs,
    /// The weights to load: safetensors (e.g. from `train --save`) or a PyTorch `torch.save`
    /// state dict (`.pt`/`.pth`) with the model's keys.
    #[arg(long)]
    pub weights: PathBuf,
    /// Examples per batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
}

/// `sinew predict`.
#[derive(Args, Debug, Clone)]
pub struct PredictArgs {
    /// The model and the dataset it was trained on (input size, classes).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where the data lives (for `csv` and `folder`, which size the model).
    #[command(flatten)]
    pub data: DataArgs,
    /// The weights to load: safetensors or a PyTorch `torch.save` state dict.
    #[arg(long)]
    pub weights: PathBuf,
    /// How many classes to print per input.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// Image files, or CSV files with one example per row.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// `sinew convert`.
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The weights to read: safetensors or a `torch.save` file (either format).
    pub input: PathBuf,
    /// Where to write them: PyTorch's `torch.save` format for a `.pt` or `.pth` path,
    /// safetensors otherwise (written atomically).
    pub output: PathBuf,
    /// Keep only the tensors under this prefix, with it removed (`model.` for a checkpoint
    /// saved as `{"model": model.state_dict(), ...}`).
    #[arg(long)]
    pub select: Option<String>,
}
