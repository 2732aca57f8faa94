//! The macros that declare this folder's activation modules: `plain_activation!` (a unit
//! struct, for activations without settings) and `activation_modules!` (a struct of the
//! activation's settings with PyTorch's defaults); each forward calls the functional form.

macro_rules! plain_activation {
    ($($(#[$doc:meta])* $name:ident => |$x:ident| $body:expr;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, Default)]
            pub struct $name;

            impl Module for $name {
                fn forward(&self, $x: &Tensor) -> Result<Tensor> {
                    let y = $body?;
                    summary::note(self, &y);
                    Ok(y)
                }
            }
        )*
    };
}

macro_rules! activation_modules {
    ($(
        $(#[$doc:meta])*
        $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty = $default:expr),* }
            => |$s:ident, $x:ident| $body:expr;
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq)]
            pub struct $name {
                $($(#[$fdoc])* pub $field: $ty,)*
            }

            impl Default for $name {
                fn default() -> Self {
                    $name { $($field: $default),* }
                }
            }

            impl Module for $name {
                fn forward(&self, $x: &Tensor) -> Result<Tensor> {
                    let $s = self;
                    let y = $body?;
                    summary::note(self, &y);
                    Ok(y)
                }
            }
        )*
    };
}
