//! GradCon weights in the authors' PyTorch names and layouts, imported from and exported to
//! safetensors files (the format of `safetensors.torch.save_file`).
//!
//! Names and shapes for `C` input channels (conv weights `[out, in, kh, kw]`, transposed-conv
//! weights `[in, out, kh, kw]`, as PyTorch stores them):
//!
//! ```text
//! down.0.weight [32, C, 4, 4]   down.0.bias [32]      up.0.weight [64, 64, 4, 4]  up.0.bias [64]
//! down.2.weight [32, 32, 4, 4]  down.2.bias [32]      up.2.weight [64, 32, 4, 4]  up.2.bias [32]
//! down.4.weight [64, 32, 4, 4]  down.4.bias [64]      up.4.weight [32, 32, 4, 4]  up.4.bias [32]
//! down.6.weight [64, 64, 4, 4]  down.6.bias [64]      up.6.weight [32, C, 4, 4]   up.6.bias [C]
//! ```
//!
//! Optionally, the reference gradients `r_l` of the four decoder weights: `ref_grad.{0,1,2,3}`
//! (f32, the shapes of `up.{0,2,4,6}.weight`) and `ref_grad_count` (int64, one element: the
//! number of updates averaged into them).
//!
//! Import strips a `module.` prefix (a model saved from `DataParallel`), converts f64, f16 and
//! bf16 to f32, infers `C` from `down.0.weight`, and reports every missing, unexpected,
//! mis-shaped or wrongly typed tensor at once, naming the file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensors, View};
use core_tensor::Tensor;

use super::fs::{read_file, write_atomic};
use crate::error::{Error, Result};
use crate::eval::threshold::Calibration;
use crate::model::{Autoencoder, ReferenceGradients};

/// The `module.` prefix that `torch.nn.DataParallel` puts before every name.
pub const DATA_PARALLEL_PREFIX: &str = "module.";

/// The name of the reference gradients' count.
pub const REF_COUNT_NAME: &str = "ref_grad_count";

/// A GradCon autoencoder's parameters under the authors' names, and optionally its reference
/// gradients: what a safetensors file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct StateDict {
    /// The 16 parameters.
    pub model: Autoencoder,
    /// `ref_grad.{0,1,2,3}` and `ref_grad_count`, when saved with the model.
    pub reference: Option<ReferenceGradients>,
    /// The decision threshold and the `beta` it holds for, kept in the file's metadata
    /// (`gradcon.threshold`, `gradcon.beta` and the whole `gradcon.calibration` as JSON).
    pub calibration: Option<Calibration>,
}

/// The metadata key of the calibration (JSON); `gradcon.threshold` and `gradcon.beta` repeat
/// its two main figures for readers that do not parse it.
pub const CALIBRATION_KEY: &str = "gradcon.calibration";

/// Whether `bytes` start as a safetensors file does: the header's length (8 bytes, little
/// endian, at least 2) and then the header itself, JSON that the format requires to begin
/// with `{`. A file that passes may still be truncated or malformed; one that fails is not a
/// safetensors file at all.
pub fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some((len, header)) = bytes.split_first_chunk::<8>() else {
        return false;
    };
    u64::from_le_bytes(*len) >= 2 && header.first() == Some(&b'{')
}

/// The 16 parameter names and shapes for `channels` input channels, encoder first, weight
/// before bias (from the one layer table, [`crate::model::layers`]).
pub fn parameter_shapes(channels: usize) -> Vec<(String, Vec<usize>)> {
    Autoencoder::param_names(channels)
        .into_iter()
        .zip(Autoencoder::param_shapes(channels))
        .collect()
}

/// A tensor to be written: dtype, shape, little-endian bytes.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

impl StateDict {
    /// Builds the weights from `(name, tensor)` pairs in the authors' names (a `module.` prefix
    /// is stripped), checking every name and shape; `source` names the origin in errors.
    pub fn from_named(
        source: &str,
        tensors: impl IntoIterator<Item = (String, Tensor<f32>)>,
        ref_grad_count: Option<u64>,
    ) -> Result<Self> {
        let mut problems = Vec::new();
        let mut map = BTreeMap::new();
        for (name, t) in tensors {
            let name = name
                .strip_prefix(DATA_PARALLEL_PREFIX)
                .map(str::to_owned)
                .unwrap_or(name);
            if map.insert(name.clone(), t).is_some() {
                problems.push(format!("`{name}` appears twice"));
            }
        }
        let channels = match map.get("down.0.weight").map(Tensor::shape) {
            Some(&[32, c, 4, 4]) if c > 0 => c,
            Some(s) => {
                return Err(Error::format(
                    source,
                    format!("down.0.weight has shape {s:?}, expected [32, C, 4, 4]"),
                ))
            }
            None => return Err(Error::format(source, "missing tensor `down.0.weight`")),
        };
        let params: Vec<Option<Tensor<f32>>> = parameter_shapes(channels)
            .iter()
            .map(|(n, s)| take(&mut map, n, s, &mut problems))
            .collect();
        let ref_names = ReferenceGradients::names();
        let has_ref = ref_names.iter().any(|n| map.contains_key(n));
        let reference = if has_ref || ref_grad_count.is_some() {
            let grads: Vec<Option<Tensor<f32>>> = ref_names
                .iter()
                .zip(Autoencoder::grad_layer_shapes(channels))
                .map(|(n, s)| take(&mut map, n, &s, &mut problems))
                .collect();
            if ref_grad_count.is_none() {
                problems.push(format!("ref_grad.* present but `{REF_COUNT_NAME}` missing"));
            }
            Some((grads, ref_grad_count.unwrap_or(0)))
        } else {
            None
        };
        for name in map.keys() {
            problems.push(format!("unexpected tensor `{name}`"));
        }
        if !problems.is_empty() {
            return Err(Error::format(
                source,
                format!("not a GradCon state dict: {}", problems.join("; ")),
            ));
        }
        // No problems: every Option above is Some.
        let model = Autoencoder {
            channels,
            params: params.into_iter().flatten().collect(),
        };
        let reference = reference.map(|(grads, count)| ReferenceGradients {
            grads: grads.into_iter().flatten().collect(),
            count,
        });
        Ok(Self {
            model,
            reference,
            calibration: None,
        })
    }
}

/// Removes `name` from `map` if it has `shape`; otherwise records the problem.
fn take(
    map: &mut BTreeMap<String, Tensor<f32>>,
    name: &str,
    shape: &[usize],
    problems: &mut Vec<String>,
) -> Option<Tensor<f32>> {
    match map.remove(name) {
        Some(t) if t.shape() == shape => Some(t),
        Some(t) => {
            problems.push(format!(
                "`{name}` has shape {:?}, expected {shape:?}",
                t.shape()
            ));
            None
        }
        None => {
            problems.push(format!("missing tensor `{name}`"));
            None
        }
    }
}

impl StateDict {
    /// The 16 parameters with their names, in [`parameter_shapes`] order.
    pub fn parameters(&self) -> impl Iterator<Item = (String, &Tensor<f32>)> {
        Autoencoder::param_names(self.model.channels)
            .into_iter()
            .zip(&self.model.params)
    }

    /// The safetensors file's bytes: the 16 parameters, and the reference gradients and their
    /// count if present, under the authors' names (no `module.` prefix).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let mut raws: Vec<(String, Raw)> =
            self.parameters().map(|(n, t)| (n, f32_raw(t))).collect();
        raws.extend(self.reference_raws()?);
        serialize(&raws, self.metadata())
    }

    /// The files PyTorch users load as they are: first the 16 parameters alone (so that a
    /// strict `load_state_dict` of the authors' module accepts it), each name prefixed with
    /// `module.` when `data_parallel` (as the authors' scripts save an `nn.DataParallel`
    /// model); then the reference gradients and their count (and the calibration in its
    /// metadata) as a second file, `None` without reference gradients.
    pub fn to_torch_bytes(&self, data_parallel: bool) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        let prefix = if data_parallel {
            DATA_PARALLEL_PREFIX
        } else {
            ""
        };
        let raws: Vec<(String, Raw)> = self
            .parameters()
            .map(|(n, t)| (format!("{prefix}{n}"), f32_raw(t)))
            .collect();
        let model = serialize(&raws, None)?;
        let refs = self.reference_raws()?;
        let refs = match refs.is_empty() {
            true => None,
            false => Some(serialize(&refs, self.metadata())?),
        };
        Ok((model, refs))
    }

    fn reference_raws(&self) -> Result<Vec<(String, Raw)>> {
        let mut raws = Vec::new();
        if let Some(r) = &self.reference {
            for (name, g) in ReferenceGradients::names().into_iter().zip(&r.grads) {
                raws.push((name, f32_raw(g)));
            }
            let count = i64::try_from(r.count).map_err(|_| {
                Error::invalid("to_safetensors_bytes", "ref_grad_count exceeds int64")
            })?;
            raws.push((
                REF_COUNT_NAME.into(),
                Raw {
                    dtype: Dtype::I64,
                    shape: Vec::new(),
                    data: count.to_le_bytes().to_vec(),
                },
            ));
        }
        Ok(raws)
    }

    fn metadata(&self) -> Option<Vec<(String, String)>> {
        self.calibration.map(|c| {
            vec![
                (
                    CALIBRATION_KEY.to_string(),
                    serde_json::to_string(&c).expect("plain data"),
                ),
                ("gradcon.threshold".to_string(), c.threshold.to_string()),
                ("gradcon.beta".to_string(), c.beta.to_string()),
            ]
        })
    }

    /// Parses a safetensors file holding a GradCon state dict; `name` names it in errors.
    pub fn from_safetensors_bytes(name: &str, bytes: &[u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::format(name, format!("bad safetensors file: {e}")))?;
        let mut tensors = Vec::new();
        let mut count = None;
        let mut problems = Vec::new();
        for (key, view) in st.iter() {
            let plain = key.strip_prefix(DATA_PARALLEL_PREFIX).unwrap_or(key);
            if plain == REF_COUNT_NAME {
                match count_value(view.dtype(), view.data()) {
                    Ok(c) => count = Some(c),
                    Err(p) => problems.push(format!("`{key}`: {p}")),
                }
                continue;
            }
            match to_f32(view.dtype(), view.data()) {
                Some(data) => match Tensor::from_vec(data, view.shape()) {
                    Ok(t) => tensors.push((key.to_owned(), t)),
                    Err(e) => problems.push(format!("`{key}`: {e}")),
                },
                None => problems.push(format!(
                    "`{key}` has dtype {:?}; F32, F64, F16 or BF16 expected",
                    view.dtype()
                )),
            }
        }
        if !problems.is_empty() {
            return Err(Error::format(name, problems.join("; ")));
        }
        let mut dict = Self::from_named(name, tensors, count)?;
        let (_, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::format(name, format!("bad safetensors file: {e}")))?;
        if let Some(text) = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(CALIBRATION_KEY))
        {
            dict.calibration = Some(serde_json::from_str(text).map_err(|e| {
                Error::format(
                    name,
                    format!("metadata `{CALIBRATION_KEY}` is not valid: {e}"),
                )
            })?);
        }
        Ok(dict)
    }

    /// Writes a safetensors file atomically (see [`write_atomic`]).
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_safetensors_bytes()?)
    }

    /// Reads a safetensors file; see [`StateDict::from_safetensors_bytes`].
    pub fn load_safetensors(path: &Path) -> Result<Self> {
        let bytes = read_file(path)?;
        Self::from_safetensors_bytes(&path.display().to_string(), &bytes)
    }
}

fn f32_raw(t: &Tensor<f32>) -> Raw {
    Raw {
        dtype: Dtype::F32,
        shape: t.shape().to_vec(),
        data: t.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// A safetensors file of `raws`, with `metadata` collected into the map type the crate takes
/// (which depends on its features).
fn serialize(raws: &[(String, Raw)], metadata: Option<Vec<(String, String)>>) -> Result<Vec<u8>> {
    ::safetensors::serialize(
        raws.iter().map(|(n, r)| (n.as_str(), r)),
        metadata.map(|m| m.into_iter().collect()),
    )
    .map_err(|e| Error::invalid("to_safetensors_bytes", e.to_string()))
}

/// Little-endian `F32`, `F64`, `F16` or `BF16` values as f32 (`None` for other dtypes).
fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        // bfloat16 is the upper half of an f32.
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
            .collect(),
        _ => return None,
    })
}

/// IEEE-754 half precision to single: `(-1)^s 2^(e-15) (1 + m/1024)`, subnormals
/// `(-1)^s 2^-14 (m/1024)`; every half value is exact in f32.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let magnitude = match exp {
        0 => {
            // m 2^-24 is exact in f32 (m has 10 bits).
            let v = mant as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        31 => 0xff << 23 | mant << 13,
        _ => (exp + 112) << 23 | mant << 13,
    };
    f32::from_bits(sign | magnitude)
}

/// The one non-negative integer of a `ref_grad_count` tensor (I64, I32, U64 or U32).
fn count_value(dtype: Dtype, data: &[u8]) -> std::result::Result<u64, String> {
    let v: i128 = match (dtype, data.len()) {
        (Dtype::I64, 8) => i128::from(i64::from_le_bytes(data.try_into().unwrap_or_default())),
        (Dtype::U64, 8) => i128::from(u64::from_le_bytes(data.try_into().unwrap_or_default())),
        (Dtype::I32, 4) => i128::from(i32::from_le_bytes(data.try_into().unwrap_or_default())),
        (Dtype::U32, 4) => i128::from(u32::from_le_bytes(data.try_into().unwrap_or_default())),
        _ => {
            return Err(format!(
                "expected one int64 value, found {dtype:?} data of {} bytes",
                data.len()
            ))
        }
    };
    u64::try_from(v).map_err(|_| format!("count {v} is negative"))
}
