//! Files: the checksummed checkpoint container, the model file and training checkpoint mapped
//! onto it, safetensors in the authors' names, and the atomic writes every writer uses.

pub mod checkpoint;
pub mod fs;
pub mod model_file;
pub mod safetensors;
