//! The TCP rendezvous of a `torchrun`-style launch (`MASTER_ADDR`, `MASTER_PORT`): rank 0 listens
//! there and hands the same bytes to every other rank. It bootstraps the NCCL backend (the bytes
//! are NCCL's 128-byte unique id, as PyTorch's `TCPStore` carries it); the collectives themselves
//! never go through it.
//!
//! Protocol: a rank `r > 0` connects (retrying while rank 0 is not up yet) and sends the 16 bytes
//! `SINEWRDV`, `r` (u32 LE), `world_size` (u32 LE); rank 0 checks them and answers with the
//! payload's length (u32 LE) and the payload. Every wait is bounded by one deadline, and the
//! errors name the missing ranks, a world-size mismatch or a duplicated rank.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use sinew_tensor::Result;

use crate::error::DistError;

const MAGIC: &[u8; 8] = b"SINEWRDV";
/// Largest payload accepted (the NCCL id is 128 bytes).
const MAX_PAYLOAD: usize = 1 << 16;
/// Pause between connection attempts and accept polls.
const POLL: Duration = Duration::from_millis(20);

fn error(msg: impl Into<String>) -> sinew_tensor::Error {
    DistError::Backend {
        backend: "rendezvous",
        msg: msg.into(),
    }
    .into()
}

/// The first address `master` (`host:port`) resolves to.
fn resolve(master: &str) -> Result<SocketAddr> {
    master
        .to_socket_addrs()
        .map_err(|e| {
            error(format!(
                "cannot resolve MASTER_ADDR:MASTER_PORT {master:?}: {e}"
            ))
        })?
        .next()
        .ok_or_else(|| error(format!("{master:?} resolves to no address")))
}

/// Rank 0 binds `master` and gives `payload` to the `world_size - 1` other ranks; every other
/// rank connects to it and returns the payload. Gives up after `timeout`.
pub fn share_from_root(
    master: &str,
    rank: usize,
    world_size: usize,
    payload: Option<&[u8]>,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let addr = resolve(master)?;
    if rank == 0 {
        let payload = payload.ok_or_else(|| error("rank 0 needs the bytes to share"))?;
        let listener = TcpListener::bind(addr).map_err(|e| {
            error(format!(
                "rank 0 cannot listen on {addr} (MASTER_ADDR:MASTER_PORT): {e}"
            ))
        })?;
        serve(&listener, world_size, payload, timeout)?;
        Ok(payload.to_vec())
    } else {
        fetch(addr, rank, world_size, timeout)
    }
}

/// Rank 0's side on a bound listener: answers each of the other ranks once.
pub fn serve(
    listener: &TcpListener,
    world_size: usize,
    payload: &[u8],
    timeout: Duration,
) -> Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= MAX_PAYLOAD)
        .ok_or_else(|| error(format!("payload of {} bytes is too large", payload.len())))?;
    let deadline = Instant::now() + timeout;
    let mut served = vec![false; world_size];
    served[0] = true;
    listener
        .set_nonblocking(true)
        .map_err(|e| error(format!("listener: {e}")))?;
    while served.iter().any(|s| !s) {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let missing: Vec<usize> = (0..world_size).filter(|&r| !served[r]).collect();
                    return Err(error(format!(
                        "ranks {missing:?} of {world_size} did not reach the rendezvous at {} \
                         within {:.1} s",
                        listener.local_addr().map_or("?".into(), |a| a.to_string()),
                        timeout.as_secs_f64()
                    )));
                }
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) => return Err(error(format!("accept: {e}"))),
        };
        configure(&stream, deadline)?;
        let mut hello = [0u8; 16];
        stream
            .read_exact(&mut hello)
            .map_err(|e| error(format!("reading a rank's greeting: {e}")))?;
        if &hello[..8] != MAGIC {
            return Err(error(
                "a connection that is not a Sinew rank reached the rendezvous",
            ));
        }
        let word =
            |k: usize| u32::from_le_bytes([hello[k], hello[k + 1], hello[k + 2], hello[k + 3]]);
        let (rank, world) = (word(8) as usize, word(12) as usize);
        if world != world_size {
            return Err(error(format!(
                "rank {rank} says the world has {world} processes, rank 0 says {world_size}"
            )));
        }
        match served.get_mut(rank) {
            Some(s) if !*s => *s = true,
            Some(_) => return Err(error(format!("rank {rank} joined the rendezvous twice"))),
            None => return Err(error(format!("rank {rank} is not in 0..{world_size}"))),
        }
        let mut answer = len.to_le_bytes().to_vec();
        answer.extend_from_slice(payload);
        stream
            .write_all(&answer)
            .map_err(|e| error(format!("answering rank {rank}: {e}")))?;
    }
    Ok(())
}

/// Read and write timeouts up to `deadline` (at least a millisecond).
fn configure(stream: &TcpStream, deadline: Instant) -> Result<()> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(left)))
        .and_then(|()| stream.set_write_timeout(Some(left)))
        .map_err(|e| error(format!("socket options: {e}")))
}

/// A non-root rank's side: connects (retrying until `timeout`), greets, reads the payload.
pub fn fetch(
    addr: SocketAddr,
    rank: usize,
    world_size: usize,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut stream = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(1))) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(POLL);
            }
            Err(e) => {
                return Err(error(format!(
                    "rank {rank} could not reach rank 0 at {addr} within {:.1} s: {e}",
                    timeout.as_secs_f64()
                )));
            }
        }
    };
    configure(&stream, deadline)?;
    let to_u32 = |v: usize, what: &str| {
        u32::try_from(v).map_err(|_| error(format!("{what} {v} does not fit the protocol")))
    };
    let mut hello = MAGIC.to_vec();
    hello.extend_from_slice(&to_u32(rank, "rank")?.to_le_bytes());
    hello.extend_from_slice(&to_u32(world_size, "world size")?.to_le_bytes());
    stream
        .write_all(&hello)
        .map_err(|e| error(format!("rank {rank} greeting rank 0: {e}")))?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(|e| {
        error(format!(
            "rank {rank} got no answer from rank 0 at {addr} (rank 0 refused the greeting or \
             died): {e}"
        ))
    })?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_PAYLOAD {
        return Err(error(format!("rank 0 announced {len} bytes")));
    }
    let mut payload = vec![0u8; len];
    stream
        .read_exact(&mut payload)
        .map_err(|e| error(format!("rank {rank} reading the shared bytes: {e}")))?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (TcpListener, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        (l, addr)
    }

    #[test]
    fn every_rank_gets_rank_zeros_bytes() {
        let (l, addr) = listener();
        let payload: Vec<u8> = (0..128u8).map(|i| i.wrapping_mul(37)).collect();
        let clients: Vec<_> = (1..4)
            .map(|rank| std::thread::spawn(move || fetch(addr, rank, 4, Duration::from_secs(10))))
            .collect();
        serve(&l, 4, &payload, Duration::from_secs(10)).unwrap();
        for c in clients {
            assert_eq!(c.join().unwrap().unwrap(), payload);
        }
    }

    #[test]
    fn ranks_that_start_before_rank_zero_wait_for_it() {
        let (l, addr) = listener();
        drop(l); // nobody listens yet: the client retries
        let client = std::thread::spawn(move || fetch(addr, 1, 2, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(100));
        let got = share_from_root(
            &addr.to_string(),
            0,
            2,
            Some(b"id"),
            Duration::from_secs(10),
        );
        assert_eq!(got.unwrap(), b"id");
        assert_eq!(client.join().unwrap().unwrap(), b"id");
    }

    #[test]
    fn a_missing_rank_is_named_after_the_timeout() {
        let (l, addr) = listener();
        let client = std::thread::spawn(move || fetch(addr, 2, 3, Duration::from_secs(10)));
        let started = Instant::now();
        let err = serve(&l, 3, b"x", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.contains("ranks [1] of 3 did not reach"), "{err}");
        assert_eq!(client.join().unwrap().unwrap(), b"x");
    }

    #[test]
    fn disagreements_and_an_absent_root_are_errors() {
        let (l, addr) = listener();
        let client = std::thread::spawn(move || fetch(addr, 1, 5, Duration::from_secs(5)));
        let err = serve(&l, 2, b"x", Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rank 1 says the world has 5 processes, rank 0 says 2"),
            "{err}"
        );
        let client_err = client.join().unwrap().unwrap_err().to_string();
        assert!(client_err.contains("no answer from rank 0"), "{client_err}");
        // Nobody listening at all: a bounded wait, then an error naming the address.
        let (l, addr) = listener();
        drop(l);
        let err = fetch(addr, 1, 2, Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(err.contains("could not reach rank 0"), "{err}");
        assert!(share_from_root("127.0.0.1:1", 0, 2, None, Duration::from_secs(1)).is_err());
    }
}
