//! The model's weights file, in the safetensors format: the header's length (8 bytes), a JSON
//! header giving each tensor's type, shape and byte range, then the data. The header is read
//! when the file opens and each tensor when it is taken, straight into the `f32` numbers the
//! encoder keeps, so the file (90 MB) is never held whole beside them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::Metadata;

/// Larger headers are refused before reading them (the model's is about 20 KB).
const MAX_HEADER: u64 = 16 << 20;

pub struct Weights {
    file: File,
    /// Where the data starts: past the header's length and the header.
    data: u64,
    header: Metadata,
}

impl Weights {
    /// Reads the header and checks that the data it describes fills the rest of the file.
    pub fn open(path: &Path) -> Result<Weights, String> {
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        let mut length = [0u8; 8];
        file.read_exact(&mut length)
            .map_err(|e| format!("reading the header's length: {e}"))?;
        let length = u64::from_le_bytes(length);
        if length > MAX_HEADER {
            return Err(format!(
                "the header claims {length} bytes, more than a weights file has"
            ));
        }
        let mut header = vec![0; length as usize];
        file.read_exact(&mut header)
            .map_err(|e| format!("reading the header: {e}"))?;
        let header: Metadata = serde_json::from_slice(&header)
            .map_err(|e| format!("the header is not a safetensors header: {e}"))?;
        let data = 8 + length;
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        if data + header.data_len() as u64 != size {
            return Err(format!(
                "the header describes {} bytes of tensors, the file holds {}",
                header.data_len(),
                size.saturating_sub(data)
            ));
        }
        Ok(Weights { file, data, header })
    }

    /// The tensor `name`, checked to have `shape`, as `f32` numbers in the stored order.
    /// F32, BF16 and F16 tensors are read (the last two exactly widened); others are refused.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let info = self
            .header
            .info(name)
            .ok_or_else(|| format!("the weights have no tensor {name}"))?;
        if info.shape != shape {
            return Err(format!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                info.shape
            ));
        }
        let widen: fn(&[u8]) -> f32 = match info.dtype {
            Dtype::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Dtype::BF16 => |b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16),
            Dtype::F16 => |b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            other => {
                return Err(format!(
                    "tensor {name} is stored as {other:?}: the encoder reads F32, BF16 or F16"
                ));
            }
        };
        let (start, end) = info.data_offsets;
        let mut bytes = vec![0; end - start];
        self.file
            .seek(SeekFrom::Start(self.data + start as u64))
            .and_then(|_| self.file.read_exact(&mut bytes))
            .map_err(|e| format!("reading tensor {name}: {e}"))?;
        Ok(bytes
            .chunks_exact(info.dtype.bitsize() / 8)
            .map(widen)
            .collect())
    }
}

/// An IEEE half-precision number, widened exactly.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    match exponent {
        // Zero and the subnormals: mantissa · 2^-24, exact in f32.
        0 => (mantissa as f32 * f32::from_bits(0x3380_0000)).copysign(f32::from_bits(sign | 1)),
        // Infinities and NaNs.
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (mantissa << 13)),
        // Rebias the exponent from 15 to 127.
        _ => f32::from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// A weights file holding these tensors (name, type, shape, bytes).
    fn file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> tempfile::NamedTempFile {
        let views = tensors.iter().map(|(name, dtype, shape, bytes)| {
            (
                *name,
                TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        });
        let bytes = safetensors::serialize(views, None).unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        file
    }

    fn le<const N: usize, T: Copy>(values: &[T], bytes: fn(T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(|&v| bytes(v)).collect()
    }

    #[test]
    fn f32_bf16_and_f16_tensors_read_as_their_exact_values() {
        let numbers = [1.0f32, -2.5, 0.15625, 65504.0, 3.0e-5];
        let f32_bytes = le(&numbers, f32::to_le_bytes);
        // bfloat16 keeps the top half of the f32 bits: numbers with nothing in the other half.
        let halves = [1.0f32, -2.5, 0.15625, 65280.0];
        let bf16: Vec<u16> = halves.iter().map(|v| (v.to_bits() >> 16) as u16).collect();
        let f16 = [0x3c00u16, 0xc100, 0x3100, 0x7bff, 0x0001, 0x8000, 0x7c00];
        let weights = file(&[
            ("a", Dtype::F32, vec![5], f32_bytes),
            ("b", Dtype::BF16, vec![2, 2], le(&bf16, u16::to_le_bytes)),
            ("c", Dtype::F16, vec![7], le(&f16, u16::to_le_bytes)),
        ]);
        let mut w = Weights::open(weights.path()).unwrap();
        assert_eq!(w.take("a", &[5]).unwrap(), numbers);
        assert_eq!(w.take("b", &[2, 2]).unwrap(), halves);
        let c = w.take("c", &[7]).unwrap();
        let smallest = 2.0f32.powi(-24);
        assert_eq!(c[..5], [1.0, -2.5, 0.15625, 65504.0, smallest]);
        assert!(c[5] == 0.0 && c[5].is_sign_negative());
        assert_eq!(c[6], f32::INFINITY);
    }

    #[test]
    fn a_missing_or_misshapen_tensor_or_another_type_is_refused_by_name() {
        let weights = file(&[
            ("ids", Dtype::I64, vec![2], vec![0; 16]),
            ("x", Dtype::F32, vec![2, 3], vec![0; 24]),
        ]);
        let mut w = Weights::open(weights.path()).unwrap();
        let refused = w.take("ids", &[2]).unwrap_err();
        assert!(
            refused.contains("tensor ids is stored as I64") && refused.contains("F32"),
            "{refused}"
        );
        let refused = w.take("x", &[3, 2]).unwrap_err();
        assert!(refused.contains("tensor x has shape [2, 3]"), "{refused}");
        let refused = w.take("y", &[1]).unwrap_err();
        assert!(refused.contains("no tensor y"), "{refused}");
    }

    #[test]
    fn a_cut_or_foreign_file_is_refused_when_opened() {
        let weights = file(&[("x", Dtype::F32, vec![4], vec![0; 16])]);
        let whole = std::fs::read(weights.path()).unwrap();
        let cut = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(cut.path(), &whole[..whole.len() - 4]).unwrap();
        let refused = Weights::open(cut.path()).err().unwrap();
        assert!(refused.contains("16 bytes of tensors"), "{refused}");
        std::fs::write(cut.path(), b"not the model").unwrap();
        let refused = Weights::open(cut.path()).err().unwrap();
        assert!(refused.contains("header"), "{refused}");
    }
}
