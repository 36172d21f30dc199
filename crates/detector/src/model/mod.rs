//! The GradCon autoencoder of PAPER.md: four strided convolutions, four transposed ones, as one
//! layer table ([`layers`]) from which every positional fact is derived: the parameter names and
//! shapes, which parameters are GradCon's gradient layers (the decoder weights), and which layer
//! ends in the sigmoid.
//!
//! Parameters are kept in one flat list in the authors' `state_dict` order: `down.0.weight`,
//! `down.0.bias`, `down.2.weight`, ..., `up.6.bias` (layer `i`'s weight at `2 i`, its bias at
//! `2 i + 1`).

pub mod gradcon;
pub mod reference;

use core_tensor::{Conv2dSpec, ConvTranspose2dSpec, Layout, Rng, Tensor};

pub use reference::ReferenceGradients;

/// Side of the (square) images the model takes.
pub const IMAGE_SIDE: usize = 28;

/// Whether a layer is a convolution or a transposed convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    Conv,
    ConvTranspose,
}

/// The non-linearity after a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Sigmoid,
}

/// One layer of the autoencoder: name prefix in the authors' module, kind, channels, padding,
/// the activation after it, and whether its weight is one of GradCon's gradient layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    pub name: &'static str,
    pub kind: LayerKind,
    pub in_channels: usize,
    pub out_channels: usize,
    pub padding: usize,
    pub activation: Activation,
    /// The weight's gradient is compared with its reference gradient (the decoder's layers).
    pub gradient_layer: bool,
}

/// Kernel size and stride of every layer.
pub const KERNEL: usize = 4;
pub const STRIDE: usize = 2;

impl Layer {
    /// Weight shape: `[out, in, k, k]` for a convolution, `[in, out, k, k]` transposed (PyTorch).
    pub fn weight_shape(&self) -> [usize; 4] {
        match self.kind {
            LayerKind::Conv => [self.out_channels, self.in_channels, KERNEL, KERNEL],
            LayerKind::ConvTranspose => [self.in_channels, self.out_channels, KERNEL, KERNEL],
        }
    }

    /// `weight.size(1) * k * k`: the fan-in PyTorch's default initialisation uses.
    pub fn fan_in(&self) -> usize {
        self.weight_shape()[1] * KERNEL * KERNEL
    }

    /// The layer as a convolution on images in `layout`.
    pub fn conv_spec(&self, layout: Layout) -> Conv2dSpec {
        Conv2dSpec::new(STRIDE, self.padding).in_layout(layout)
    }

    /// The weight's name in the authors' `state_dict`, e.g. `up.0.weight`.
    pub fn weight_name(&self) -> String {
        format!("{}.weight", self.name)
    }

    /// The bias's name in the authors' `state_dict`, e.g. `up.0.bias`.
    pub fn bias_name(&self) -> String {
        format!("{}.bias", self.name)
    }

    /// The layer as a transposed convolution on images in `layout`.
    pub fn conv_transpose_spec(&self, layout: Layout) -> ConvTranspose2dSpec {
        ConvTranspose2dSpec::new(STRIDE, self.padding, 0).in_layout(layout)
    }
}

/// Number of layers.
pub const NUM_LAYERS: usize = 8;
/// Number of gradient layers (the layers of [`layers`] with `gradient_layer` set).
pub const NUM_GRADIENT_LAYERS: usize = 4;

/// The eight layers for `c` image channels, encoder then decoder: the one table every other
/// fact about the model's structure is derived from.
pub fn layers(c: usize) -> [Layer; NUM_LAYERS] {
    use Activation::{Relu, Sigmoid};
    use LayerKind::{Conv, ConvTranspose};
    let l = |name, kind, i, o, p, activation| Layer {
        name,
        kind,
        in_channels: i,
        out_channels: o,
        padding: p,
        activation,
        gradient_layer: kind == ConvTranspose,
    };
    [
        l("down.0", Conv, c, 32, 2, Relu),
        l("down.2", Conv, 32, 32, 2, Relu),
        l("down.4", Conv, 32, 64, 2, Relu),
        l("down.6", Conv, 64, 64, 2, Relu),
        l("up.0", ConvTranspose, 64, 64, 2, Relu),
        l("up.2", ConvTranspose, 64, 32, 1, Relu),
        l("up.4", ConvTranspose, 32, 32, 2, Relu),
        l("up.6", ConvTranspose, 32, c, 1, Sigmoid),
    ]
}

/// Index of layer `i`'s weight in the flat parameter list (its bias follows it).
pub const fn weight_index(layer: usize) -> usize {
    2 * layer
}

/// The gradient layers (decoder weights): for each, its layer index in [`layers`].
pub fn gradient_layers() -> [usize; NUM_GRADIENT_LAYERS] {
    let table = layers(1);
    let mut out = [0; NUM_GRADIENT_LAYERS];
    let mut found = table.iter().enumerate().filter(|(_, l)| l.gradient_layer);
    for slot in &mut out {
        *slot = found
            .next()
            .map(|(i, _)| i)
            .expect("four gradient layers in the table");
    }
    debug_assert!(
        found.next().is_none(),
        "more gradient layers than NUM_GRADIENT_LAYERS"
    );
    out
}

/// Indices, in the flat parameter list, of the gradient layers' weights.
pub fn gradient_params() -> [usize; NUM_GRADIENT_LAYERS] {
    gradient_layers().map(weight_index)
}

/// The autoencoder's parameters for `channels` image channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Autoencoder {
    pub channels: usize,
    /// `[w0, b0, w1, b1, ..., w7, b7]` in the order of [`layers`].
    pub params: Vec<Tensor<f32>>,
}

impl Autoencoder {
    /// PyTorch's default initialisation: weights and biases uniform in `+-1/sqrt(fan_in)`,
    /// drawn layer by layer (weight then bias) from `rng`.
    pub fn init(channels: usize, rng: &mut Rng) -> Self {
        let mut params = Vec::with_capacity(16);
        for layer in layers(channels) {
            let bound = 1.0 / (layer.fan_in() as f64).sqrt();
            params.push(Tensor::uniform(&layer.weight_shape(), -bound, bound, rng));
            params.push(Tensor::uniform(&[layer.out_channels], -bound, bound, rng));
        }
        Self { channels, params }
    }

    /// The authors' `state_dict` names, in the order of `params`.
    pub fn param_names(channels: usize) -> Vec<String> {
        layers(channels)
            .iter()
            .flat_map(|l| [l.weight_name(), l.bias_name()])
            .collect()
    }

    /// The expected shape of every parameter, in order.
    pub fn param_shapes(channels: usize) -> Vec<Vec<usize>> {
        layers(channels)
            .iter()
            .flat_map(|l| [l.weight_shape().to_vec(), vec![l.out_channels]])
            .collect()
    }

    /// The output layer's bias (the last layer's, the flat list's last entry), one value per
    /// image channel.
    pub fn output_bias_mut(&mut self) -> &mut Tensor<f32> {
        self.params.last_mut().expect("the layer table has layers")
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.iter().map(Tensor::len).sum()
    }

    /// Shapes of the four gradient layers (decoder weights).
    pub fn grad_layer_shapes(channels: usize) -> Vec<Vec<usize>> {
        let table = layers(channels);
        gradient_layers()
            .iter()
            .map(|&i| table[i].weight_shape().to_vec())
            .collect()
    }

    /// Whether every parameter is finite; the name of the first that is not, otherwise.
    pub fn first_non_finite(&self) -> Option<String> {
        Self::param_names(self.channels)
            .into_iter()
            .zip(&self.params)
            .find(|(_, p)| p.data().iter().any(|v| !v.is_finite()))
            .map(|(n, _)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_paper() {
        let mut rng = Rng::seed_from_u64(0);
        assert_eq!(Autoencoder::init(1, &mut rng).num_params(), 230_721);
        assert_eq!(Autoencoder::init(3, &mut rng).num_params(), 232_771);
        let grad_values = |c| -> usize {
            Autoencoder::grad_layer_shapes(c)
                .iter()
                .map(|s| s.iter().product::<usize>())
                .sum()
        };
        assert_eq!(grad_values(1), 115_200);
        assert_eq!(grad_values(3), 116_224);
    }

    #[test]
    fn init_is_bounded_and_seeded() {
        let a = Autoencoder::init(1, &mut Rng::seed_from_u64(5));
        assert_eq!(a, Autoencoder::init(1, &mut Rng::seed_from_u64(5)));
        for (p, layer) in a.params.chunks(2).zip(layers(1)) {
            let bound = 1.0 / (layer.fan_in() as f32).sqrt();
            assert!(p[0]
                .data()
                .iter()
                .chain(p[1].data())
                .all(|v| v.abs() <= bound));
        }
        assert_eq!(Autoencoder::param_names(1)[14], "up.6.weight");
    }

    #[test]
    fn positional_facts_come_from_the_table() {
        assert_eq!(gradient_params(), [8, 10, 12, 14]);
        let names = Autoencoder::param_names(3);
        let grad_names: Vec<&str> = gradient_params()
            .iter()
            .map(|&i| names[i].as_str())
            .collect();
        assert_eq!(
            grad_names,
            ["up.0.weight", "up.2.weight", "up.4.weight", "up.6.weight"]
        );
        let sigmoid: Vec<usize> = layers(1)
            .iter()
            .enumerate()
            .filter(|(_, l)| l.activation == Activation::Sigmoid)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(sigmoid, [NUM_LAYERS - 1]);
    }
}
