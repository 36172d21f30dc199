//! The GradCon autoencoder of PAPER.md: four strided convolutions, four transposed ones.
//!
//! Parameters are kept in one flat list in the authors' `state_dict` order: `down.0.weight`,
//! `down.0.bias`, `down.2.weight`, ..., `up.6.bias`. The four decoder weights (`up.{0,2,4,6}.weight`)
//! are GradCon's "gradient layers".

use core_tensor::{Conv2dSpec, ConvTranspose2dSpec, Layout, Rng, Tensor};

/// Side of the (square) images the model takes.
pub const IMAGE_SIDE: usize = 28;

/// Whether a layer is a convolution or a transposed convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    Conv,
    ConvTranspose,
}

/// One layer of the autoencoder: name prefix in the authors' module, kind, channels, padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    pub name: &'static str,
    pub kind: LayerKind,
    pub in_channels: usize,
    pub out_channels: usize,
    pub padding: usize,
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

    /// The layer as a transposed convolution on images in `layout`.
    pub fn conv_transpose_spec(&self, layout: Layout) -> ConvTranspose2dSpec {
        ConvTranspose2dSpec::new(STRIDE, self.padding, 0).in_layout(layout)
    }
}

/// The eight layers for `c` image channels, encoder then decoder.
pub fn layers(c: usize) -> [Layer; 8] {
    use LayerKind::{Conv, ConvTranspose};
    let l = |name, kind, i, o, p| Layer {
        name,
        kind,
        in_channels: i,
        out_channels: o,
        padding: p,
    };
    [
        l("down.0", Conv, c, 32, 2),
        l("down.2", Conv, 32, 32, 2),
        l("down.4", Conv, 32, 64, 2),
        l("down.6", Conv, 64, 64, 2),
        l("up.0", ConvTranspose, 64, 64, 2),
        l("up.2", ConvTranspose, 64, 32, 1),
        l("up.4", ConvTranspose, 32, 32, 2),
        l("up.6", ConvTranspose, 32, c, 1),
    ]
}

/// Indices, in the flat parameter list, of the four decoder weights (the gradient layers).
pub const GRAD_LAYER_PARAMS: [usize; 4] = [8, 10, 12, 14];

/// The autoencoder's parameters for `channels` image channels.
#[derive(Debug, Clone, PartialEq)]
pub struct GradConModel {
    pub channels: usize,
    /// `[w0, b0, w1, b1, ..., w7, b7]` in the order of [`layers`].
    pub params: Vec<Tensor<f32>>,
}

impl GradConModel {
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
            .flat_map(|l| [format!("{}.weight", l.name), format!("{}.bias", l.name)])
            .collect()
    }

    /// The expected shape of every parameter, in order.
    pub fn param_shapes(channels: usize) -> Vec<Vec<usize>> {
        layers(channels)
            .iter()
            .flat_map(|l| [l.weight_shape().to_vec(), vec![l.out_channels]])
            .collect()
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.iter().map(Tensor::len).sum()
    }

    /// Shapes of the four gradient layers (decoder weights).
    pub fn grad_layer_shapes(channels: usize) -> Vec<Vec<usize>> {
        let shapes = Self::param_shapes(channels);
        GRAD_LAYER_PARAMS
            .iter()
            .map(|&i| shapes[i].clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_paper() {
        let mut rng = Rng::seed_from_u64(0);
        assert_eq!(GradConModel::init(1, &mut rng).num_params(), 230_721);
        assert_eq!(GradConModel::init(3, &mut rng).num_params(), 232_771);
        let grad_values = |c| -> usize {
            GradConModel::grad_layer_shapes(c)
                .iter()
                .map(|s| s.iter().product::<usize>())
                .sum()
        };
        assert_eq!(grad_values(1), 115_200);
        assert_eq!(grad_values(3), 116_224);
    }

    #[test]
    fn init_is_bounded_and_seeded() {
        let a = GradConModel::init(1, &mut Rng::seed_from_u64(5));
        assert_eq!(a, GradConModel::init(1, &mut Rng::seed_from_u64(5)));
        for (p, layer) in a.params.chunks(2).zip(layers(1)) {
            let bound = 1.0 / (layer.fan_in() as f32).sqrt();
            assert!(p[0]
                .data()
                .iter()
                .chain(p[1].data())
                .all(|v| v.abs() <= bound));
        }
        assert_eq!(GradConModel::param_names(1)[14], "up.6.weight");
    }
}
