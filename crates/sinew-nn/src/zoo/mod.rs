//! The course's models: the perceptron, logistic regression, MLP, LeNet-5, AlexNet, VGG,
//! ResNet (torchvision's ImageNet forms and the CIFAR ResNets). Where torchvision has a model,
//! parameter names, shapes and counts are torchvision's, so its checkpoints load directly.

pub mod resnet;
pub mod small;
pub mod vgg;

pub use resnet::{
    BasicBlock, Bottleneck, CifarResNet, ResNet, resnet18, resnet20, resnet32, resnet34, resnet50,
    resnet56,
};
pub use small::{Perceptron, lenet5, logistic_regression, mlp};
pub use vgg::{FeaturesClassifier, alexnet, vgg11, vgg13, vgg16, vgg19};
