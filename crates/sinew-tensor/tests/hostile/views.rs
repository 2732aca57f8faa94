//! Extreme sizes, strides and offsets through every view op.

use sinew_tensor::{Error, Tensor};

use super::{err_text, expanded};

fn grid() -> Tensor {
    Tensor::from_vec((0..12).map(|v| v as f32).collect::<Vec<_>>(), [3, 4]).unwrap()
}

#[test]
fn narrow_and_slice_bounds_never_wrap() {
    let t = grid();
    // narrow(0, 2, usize::MAX): start + len used to wrap to a small number in release.
    assert_eq!(
        err_text(t.narrow(0, 2, usize::MAX)),
        "narrow: range start 2, len 18446744073709551615, step 1 out of bounds for dim 0 of size 3"
    );
    assert!(t.narrow(0, usize::MAX, 1).is_err());
    assert!(t.narrow(0, usize::MAX, 0).is_err());
    assert!(t.narrow(isize::MIN, 0, 1).is_err());
    assert_eq!(t.narrow(0, 3, 0).unwrap().dims(), &[0, 4]);
    // A huge step keeps only the first element; step 0 is an error.
    let s = t.slice(1, 1, usize::MAX, usize::MAX).unwrap();
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![1.0, 5.0, 9.0]);
    assert!(t.slice(1, 0, 4, 0).is_err());
    assert_eq!(
        t.slice(0, usize::MAX, usize::MAX, 1).unwrap().dims(),
        &[0, 4]
    );
    // Slicing a huge broadcast view keeps the offsets in range.
    let big = expanded(&[1 << 40, 1 << 20]);
    let piece = big
        .narrow(0, (1 << 40) - 2, 2)
        .unwrap()
        .narrow(1, 7, 3)
        .unwrap();
    assert_eq!(piece.to_vec::<f32>().unwrap(), vec![1.0; 6]);
    let stepped = big.slice(0, 5, 1 << 40, 1 << 38).unwrap();
    assert_eq!(stepped.dims(), &[4, 1 << 20]);
}

#[test]
fn reshape_and_view_check_the_target_shape() {
    let t = grid();
    assert_eq!(
        err_text(t.reshape([3usize, 6148914691236517206])),
        "reshape: the element count of shape [3, 6148914691236517206] overflows the addressable size"
    );
    assert!(matches!(
        t.view([1usize << 32, 1 << 32]),
        Err(Error::Overflow { op: "view", .. })
    ));
    let empty = t.narrow(0, 0, 0).unwrap();
    assert!(matches!(
        empty.reshape([0usize, 1 << 32, 1 << 32]),
        Err(Error::Overflow { .. })
    ));
    assert_eq!(
        empty.reshape([0usize, 1 << 40]).unwrap().dims(),
        &[0, 1 << 40]
    );
    // A reshape of a huge stride-0 view stays a view.
    let big = expanded(&[1 << 31, 1 << 31]);
    let flat = big.reshape([1usize << 62]).unwrap();
    assert_eq!(flat.stride(), &[0]);
    assert_eq!(big.flatten_all().unwrap().dims(), &[1 << 62]);
    assert!(big.reshape([1usize << 62, 2]).is_err());
    // Signed sizes at the extremes: a clear error, never a wrapped size.
    assert!(err_text(t.reshape([i64::MIN, -1])).contains("invalid size"));
    assert!(err_text(t.reshape([i64::MAX, -1])).contains("invalid for an input of 12"));
    assert!(matches!(
        t.view([isize::MAX, 4, -1]),
        Err(Error::Overflow { op: "view", .. })
    ));
    assert!(err_text(empty.reshape([0, -1])).contains("could be any size"));
    assert_eq!(big.reshape([-1i64]).unwrap().dims(), &[1 << 62]);
}

#[test]
fn permute_squeeze_unsqueeze_flatten_with_hostile_dims() {
    let t = grid();
    assert!(t.permute(&[0, 0]).is_err());
    assert!(t.permute(&[0, usize::MAX]).is_err());
    assert!(t.permute(&[1]).is_err());
    assert!(matches!(
        t.transpose(0, isize::MAX),
        Err(Error::DimOutOfRange { .. })
    ));
    assert!(matches!(
        t.unsqueeze(isize::MAX),
        Err(Error::DimOutOfRange { .. })
    ));
    assert!(matches!(
        t.unsqueeze(isize::MIN),
        Err(Error::DimOutOfRange { .. })
    ));
    assert!(matches!(
        t.squeeze(isize::MIN),
        Err(Error::DimOutOfRange { .. })
    ));
    assert!(t.flatten(0, isize::MAX).is_err());
    assert!(t.flatten(1, 0).is_err());
    // Views of a huge broadcast view: shapes and strides stay exact.
    let big = expanded(&[1 << 40, 1 << 20]);
    let p = big.permute(&[1, 0]).unwrap().unsqueeze(1).unwrap();
    assert_eq!(p.dims(), &[1 << 20, 1, 1 << 40]);
    assert_eq!(p.squeeze(1).unwrap().dims(), &[1 << 20, 1 << 40]);
    assert_eq!(big.flatten(0, 1).unwrap().dims(), &[1 << 60]);
}

#[test]
fn expand_and_broadcast_to_check_the_target() {
    let s = Tensor::scalar(1.0f32);
    assert!(matches!(
        s.expand([usize::MAX]),
        Err(Error::Overflow { .. })
    ));
    assert!(matches!(
        s.broadcast_to([1 << 31, 1 << 31, 4]),
        Err(Error::Overflow {
            op: "broadcast_to",
            ..
        })
    ));
    assert!(grid().expand([2, 3]).is_err());
    // Broadcasting two operands whose shapes multiply out past usize.
    let (a, b) = (expanded(&[1 << 32, 1]), expanded(&[1, 1 << 32]));
    assert!(matches!(a.add(&b), Err(Error::Overflow { .. })));
    assert!(matches!(a.lt(&b), Err(Error::Overflow { .. })));
}
