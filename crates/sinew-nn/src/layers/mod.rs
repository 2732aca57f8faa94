//! The layers: each file holds one family, its config, module and functional form.

#[macro_use]
mod activation_macro;
pub mod activation;
pub mod activation_piecewise;
pub mod activation_smooth;
pub mod adaptive_pool;
pub mod batch_norm;
mod batch_norm_fused;
pub mod container;
pub mod conv;
pub mod conv_transpose;
pub mod dropout;
pub mod embedding;
pub mod fold;
pub mod group_norm;
pub mod instance_norm;
mod layer_norm_fused;
pub mod linear;
pub mod local_response_norm;
pub mod lp_pool;
mod norm_node;
pub mod padding;
pub mod pool;
pub mod prelu;
pub mod reshape;
mod unbatched;
pub mod unpool;
pub mod upsample;
