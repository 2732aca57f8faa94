//! The layers: each file holds one family, its config, module and functional form.

pub mod activation;
pub mod adaptive_pool;
pub mod batch_norm;
mod batch_norm_fused;
pub mod container;
pub mod conv;
pub mod dropout;
pub mod embedding;
pub mod group_norm;
mod layer_norm_fused;
pub mod linear;
mod norm_node;
pub mod pool;
pub mod reshape;
mod unbatched;
