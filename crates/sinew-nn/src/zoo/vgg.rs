//! VGG-11/13/16/19, with and without batch norm, and AlexNet: torchvision's layouts
//! (`features`, `avgpool`, `classifier`), parameter names and initialisation.

use sinew_tensor::{Result, Tensor};

use crate::{
    AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Conv2dOptions, Dropout, Linear, MaxPool2d, Module,
    PoolOptions, ReLU, Sequential, Visit, init,
};

/// A feature extractor, `AdaptiveAvgPool2d`, then a classifier (VGG and AlexNet).
pub struct FeaturesClassifier {
    /// Convolutions and pooling.
    pub features: Sequential,
    /// To a fixed grid.
    pub avgpool: AdaptiveAvgPool2d,
    /// Fully connected layers (replace the last one to fine-tune).
    pub classifier: Sequential,
}

impl Module for FeaturesClassifier {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.avgpool.forward(&self.features.forward(x)?)?;
        self.classifier.forward(&y.flatten(1, -1)?)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("features", &self.features);
        v.child("avgpool", &self.avgpool);
        v.child("classifier", &self.classifier);
    }
}

/// `M` is a 2x2 max pool, a number a 3x3 convolution with that many channels.
const VGG11: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
const VGG13: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0,
];
const VGG16: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];
const VGG19: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
];

/// torchvision's VGG init for a linear layer: N(0, 0.01), zero bias.
fn vgg_linear(i: usize, o: usize) -> Result<Linear> {
    let l = Linear::new(i, o)?;
    init::normal_(&l.weight.value(), 0.0, 0.01)?;
    if let Some(b) = &l.bias {
        init::zeros_(&b.value())?;
    }
    Ok(l)
}

fn vgg(cfg: &[usize], batch_norm: bool, num_classes: usize) -> Result<FeaturesClassifier> {
    let mut features = Sequential::new();
    let mut cin = 3;
    for &c in cfg {
        if c == 0 {
            features = features.append(MaxPool2d::new(2));
            continue;
        }
        let conv = Conv2d::with_options(cin, c, (3, 3), Conv2dOptions::default().padding(1))?;
        init::kaiming_normal_(&conv.weight.value(), 0.0, init::FanMode::FanOut, "relu")?;
        if let Some(b) = &conv.bias {
            init::zeros_(&b.value())?;
        }
        features = features.append(conv);
        if batch_norm {
            features = features.append(BatchNorm2d::new(c)?);
        }
        features = features.append(ReLU);
        cin = c;
    }
    let classifier = Sequential::new()
        .append(vgg_linear(512 * 7 * 7, 4096)?)
        .append(ReLU)
        .append(Dropout::new(0.5))
        .append(vgg_linear(4096, 4096)?)
        .append(ReLU)
        .append(Dropout::new(0.5))
        .append(vgg_linear(4096, num_classes)?);
    Ok(FeaturesClassifier {
        features,
        avgpool: AdaptiveAvgPool2d::new((7, 7)),
        classifier,
    })
}

/// VGG-11 (configuration A).
pub fn vgg11(batch_norm: bool, num_classes: usize) -> Result<FeaturesClassifier> {
    vgg(VGG11, batch_norm, num_classes)
}

/// VGG-13 (configuration B).
pub fn vgg13(batch_norm: bool, num_classes: usize) -> Result<FeaturesClassifier> {
    vgg(VGG13, batch_norm, num_classes)
}

/// VGG-16 (configuration D; 138,357,544 parameters without batch norm, 1000 classes).
pub fn vgg16(batch_norm: bool, num_classes: usize) -> Result<FeaturesClassifier> {
    vgg(VGG16, batch_norm, num_classes)
}

/// VGG-19 (configuration E).
pub fn vgg19(batch_norm: bool, num_classes: usize) -> Result<FeaturesClassifier> {
    vgg(VGG19, batch_norm, num_classes)
}

/// torchvision's AlexNet (61,100,840 parameters for 1000 classes), default initialisation.
pub fn alexnet(num_classes: usize) -> Result<FeaturesClassifier> {
    let conv = |i, o, k: usize, s: usize, p: usize| {
        Conv2d::with_options(i, o, (k, k), Conv2dOptions::default().stride(s).padding(p))
    };
    let pool = || MaxPool2d::with_options(PoolOptions::new(3).stride(2));
    let features = Sequential::new()
        .append(conv(3, 64, 11, 4, 2)?)
        .append(ReLU)
        .append(pool())
        .append(conv(64, 192, 5, 1, 2)?)
        .append(ReLU)
        .append(pool())
        .append(conv(192, 384, 3, 1, 1)?)
        .append(ReLU)
        .append(conv(384, 256, 3, 1, 1)?)
        .append(ReLU)
        .append(conv(256, 256, 3, 1, 1)?)
        .append(ReLU)
        .append(pool());
    let classifier = Sequential::new()
        .append(Dropout::new(0.5))
        .append(Linear::new(256 * 6 * 6, 4096)?)
        .append(ReLU)
        .append(Dropout::new(0.5))
        .append(Linear::new(4096, 4096)?)
        .append(ReLU)
        .append(Linear::new(4096, num_classes)?);
    Ok(FeaturesClassifier {
        features,
        avgpool: AdaptiveAvgPool2d::new((6, 6)),
        classifier,
    })
}
