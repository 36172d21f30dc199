//! The 24 convolution kernels of the GradCon autoencoder: for each of its eight layers the
//! forward pass, the input gradient and the weight gradient, with random operands.
//!
//! The layer list matches `benches/peer/layers.py`, so the two engines time the same work. The
//! images are NCHW as there, or NHWC as the GradCon model runs its layers ([`Layout`]).

use core_tensor::conv::{
    conv2d_input_grad_on, conv2d_on, conv2d_weight_grad_on, conv_transpose2d_on, Conv2dSpec,
    ConvShape, ConvTranspose2dSpec,
};
use core_tensor::{Isa, Layout, Rng, Tensor};

/// One layer: `k4 s2` convolution (or transposed convolution) with its channels, input size and
/// padding.
#[derive(Debug, Clone, Copy)]
pub struct Layer {
    pub name: &'static str,
    pub transposed: bool,
    pub cin: usize,
    pub cout: usize,
    pub size: usize,
    pub padding: usize,
}

/// Encoder (28 -> 15 -> 8 -> 5 -> 3) and decoder (3 -> 4 -> 8 -> 14 -> 28) for one image
/// channel ([`layers`] gives them for any).
pub const LAYERS: [Layer; 8] = [
    layer("enc1", false, 1, 32, 28, 2),
    layer("enc2", false, 32, 32, 15, 2),
    layer("enc3", false, 32, 64, 8, 2),
    layer("enc4", false, 64, 64, 5, 2),
    layer("dec1", true, 64, 64, 3, 2),
    layer("dec2", true, 64, 32, 4, 1),
    layer("dec3", true, 32, 32, 8, 2),
    layer("dec4", true, 32, 1, 14, 1),
];

/// The eight layers for images of `channels` channels.
pub fn layers(channels: usize) -> [Layer; 8] {
    let mut l = LAYERS;
    l[0].cin = channels;
    l[7].cout = channels;
    l
}

const fn layer(
    name: &'static str,
    transposed: bool,
    cin: usize,
    cout: usize,
    size: usize,
    padding: usize,
) -> Layer {
    Layer {
        name,
        transposed,
        cin,
        cout,
        size,
        padding,
    }
}

/// Kernel size and stride of every layer.
pub const KERNEL: usize = 4;
pub const STRIDE: usize = 2;

/// Which of a layer's three kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Forward,
    InputGrad,
    WeightGrad,
}

impl Pass {
    pub const ALL: [Pass; 3] = [Pass::Forward, Pass::InputGrad, Pass::WeightGrad];

    pub fn name(self) -> &'static str {
        match self {
            Pass::Forward => "forward",
            Pass::InputGrad => "input_grad",
            Pass::WeightGrad => "weight_grad",
        }
    }
}

/// One kernel with its operands: `x` the layer input, `w` its weight, `b` its bias and `gy` an
/// output gradient.
#[derive(Debug)]
pub struct LayerKernel {
    pub layer: Layer,
    pub pass: Pass,
    x: Tensor<f32>,
    w: Tensor<f32>,
    b: Tensor<f32>,
    gy: Tensor<f32>,
    layout: Layout,
}

impl LayerKernel {
    /// `enc1.forward`, ...
    pub fn name(&self) -> String {
        format!("{}.{}", self.layer.name, self.pass.name())
    }

    fn conv_spec(&self) -> Conv2dSpec {
        Conv2dSpec::new(STRIDE, self.layer.padding).in_layout(self.layout)
    }

    fn transpose_spec(&self) -> ConvTranspose2dSpec {
        ConvTranspose2dSpec::new(STRIDE, self.layer.padding, 0).in_layout(self.layout)
    }

    /// The shapes of the convolution this kernel belongs to (for a transposed layer, the forward
    /// convolution it is the adjoint of); every pass costs its `macs()`.
    pub fn shape(&self) -> ConvShape {
        if self.layer.transposed {
            core_tensor::conv::conv_transpose2d_shape(&self.x, &self.w, self.transpose_spec())
        } else {
            core_tensor::conv::conv2d_shape(&self.x, &self.w, self.conv_spec())
        }
        .expect("the model's layers are valid")
    }

    /// Floating-point operations of one call (two per multiply-add).
    pub fn flops(&self) -> usize {
        2 * self.shape().macs()
    }

    /// Runs the kernel once on `isa`, returning its result.
    pub fn run(&self, isa: Isa) -> Tensor<f32> {
        let size = [self.layer.size; 2];
        let k = [KERNEL; 2];
        let out = match (self.layer.transposed, self.pass) {
            (false, Pass::Forward) => {
                conv2d_on(isa, &self.x, &self.w, Some(&self.b), self.conv_spec())
            }
            (false, Pass::InputGrad) => {
                conv2d_input_grad_on(isa, &self.gy, &self.w, size, self.conv_spec())
            }
            (false, Pass::WeightGrad) => {
                conv2d_weight_grad_on(isa, &self.x, &self.gy, k, self.conv_spec())
            }
            (true, Pass::Forward) => {
                conv_transpose2d_on(isa, &self.x, &self.w, Some(&self.b), self.transpose_spec())
            }
            // The input gradient of a transposed convolution is the forward convolution of its
            // output gradient; its weight gradient swaps the roles of input and output gradient.
            (true, Pass::InputGrad) => conv2d_on(isa, &self.gy, &self.w, None, self.conv_spec()),
            (true, Pass::WeightGrad) => {
                conv2d_weight_grad_on(isa, &self.gy, &self.x, k, self.conv_spec())
            }
        };
        out.expect("the model's layers are valid")
    }
}

/// The 24 kernels at batch `batch` for images of `channels` channels in `layout`, operands
/// uniform in `[-1, 1)` from a fixed seed (the same values in either layout).
pub fn kernels(batch: usize, channels: usize, layout: Layout) -> Vec<LayerKernel> {
    let mut rng = Rng::seed_from_u64(0);
    let mut out = Vec::new();
    let images = |t: Tensor<f32>| {
        t.relayout(Layout::Nchw, layout)
            .expect("the operands are image batches")
    };
    for layer in layers(channels) {
        let (cin, cout, s) = (layer.cin, layer.cout, layer.size);
        let x = Tensor::uniform(&[batch, cin, s, s], -1.0, 1.0, &mut rng);
        let w = if layer.transposed {
            Tensor::uniform(&[cin, cout, KERNEL, KERNEL], -1.0, 1.0, &mut rng)
        } else {
            Tensor::uniform(&[cout, cin, KERNEL, KERNEL], -1.0, 1.0, &mut rng)
        };
        let b = Tensor::uniform(&[cout], -1.0, 1.0, &mut rng);
        let y_hw = if layer.transposed {
            ConvTranspose2dSpec::new(STRIDE, layer.padding, 0).output_hw([s, s], [KERNEL, KERNEL])
        } else {
            Conv2dSpec::new(STRIDE, layer.padding).output_hw([s, s], [KERNEL, KERNEL])
        }
        .expect("the model's layers are valid");
        let gy = Tensor::uniform(&[batch, cout, y_hw[0], y_hw[1]], -1.0, 1.0, &mut rng);
        for pass in Pass::ALL {
            out.push(LayerKernel {
                layer,
                pass,
                x: images(x.clone()),
                w: w.clone(),
                b: b.clone(),
                gy: images(gy.clone()),
                layout,
            });
        }
    }
    out
}
