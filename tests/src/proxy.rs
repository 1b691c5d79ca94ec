//! A slow path: a TCP forwarder on a lab host that holds every chunk for a
//! fixed time in each direction, like a congested uplink. This machine's
//! kernel has no netem (see [`crate::Lan::netem`]), so delay is added in
//! user space; the bytes still cross the lab's veths and bridge for real.
//!
//! Threads: one accepts; each connection has a reader and a writer per
//! direction. Every thread enters the host's network namespace (threads
//! inherit it from the accepting thread) and ends when the proxy is
//! dropped, within [`POLL`].

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

pub struct DelayProxy {
    /// Where clients connect (the host's LAN address).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl DelayProxy {
    /// Starts on `netns` (a path under /var/run/netns), listening on
    /// `listen` and forwarding to `upstream`, each direction `one_way` late.
    pub(crate) fn start(netns: String, listen: SocketAddr, upstream: SocketAddr, one_way: Duration) -> DelayProxy {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (s, t) = (stop.clone(), threads.clone());
        let accept = std::thread::spawn(move || {
            enter_netns(&netns);
            let listener = match TcpListener::bind(listen) {
                Ok(l) => l,
                Err(e) => return ready_tx.send(Err(e.to_string())).unwrap_or(()),
            };
            listener.set_nonblocking(true).expect("nonblocking listener");
            let _ = ready_tx.send(Ok(()));
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(upstream) else { continue };
                        let _ = client.set_nonblocking(false);
                        for (from, to) in [(&client, &server), (&server, &client)] {
                            let (from, to) = (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
                            let pair = pump(from, to, one_way, s.clone());
                            t.lock().unwrap_or_else(|e| e.into_inner()).extend(pair);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL / 5),
                    Err(_) => std::thread::sleep(POLL),
                }
            }
        });
        ready_rx.recv().expect("proxy thread").unwrap_or_else(|e| panic!("proxy on {listen}: {e}"));
        threads.lock().unwrap_or_else(|e| e.into_inner()).push(accept);
        DelayProxy { addr: listen, stop, threads }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Joined one by one: the accept thread may still add a pair.
        loop {
            let next = self.threads.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match next {
                Some(t) => {
                    let _ = t.join();
                }
                None => break,
            }
        }
    }
}

fn enter_netns(path: &str) {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: setns(2) on a namespace fd we hold; it changes only this
    // thread's network namespace (and that of threads it starts).
    let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// Copies `from` to `to`, every chunk `delay` after it was read. Ends at
/// EOF, on an error, or at stop; then shuts the far side's write half.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration, stop: Arc<AtomicBool>) -> [JoinHandle<()>; 2] {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let _ = from.set_read_timeout(Some(POLL));
    let s = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while !s.load(Ordering::Relaxed) {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    });
    let writer = std::thread::spawn(move || {
        loop {
            match rx.recv_timeout(POLL) {
                Ok((due, chunk)) => {
                    // Sleep in slices so a stop is seen soon.
                    while Instant::now() < due && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep((due - Instant::now()).min(POLL));
                    }
                    if stop.load(Ordering::Relaxed) || to.write_all(&chunk).is_err() {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if !stop.load(Ordering::Relaxed) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    [reader, writer]
}
