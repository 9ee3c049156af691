//! Socket options the gateway sets on its TCP connections (the carrier's, the agent's and the admin's): that
//! a write leaves at once, how long unacknowledged data may sit, and how much of it the kernel may hold.

/// Bounds how long an accepted connection may hold data we sent that the peer does not acknowledge, and
/// (when configured) how much of it the kernel may hold.
pub fn bound_unacknowledged_data(conn: &dyn std::any::Any, ms: u64, send_buffer: usize) {
    type Tcp = actix_web::rt::net::TcpStream;
    // With `server.tls_cert` the connection is the TLS stream around the socket.
    let tls = || {
        conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<Tcp>>()
            .map(|t| t.get_ref().0)
    };
    if let Some(sock) = conn.downcast_ref::<Tcp>().or_else(tls) {
        send_at_once(sock, "carrier");
        if let Err(e) = set_send_timeout(sock, ms) {
            log::warn!("carrier: TCP_USER_TIMEOUT not set: {e}");
        }
        if send_buffer > 0 {
            if let Err(e) = set_send_buffer(sock, send_buffer) {
                log::warn!("carrier: SO_SNDBUF not set: {e}");
            }
        }
    }
}

/// An admin connection's socket, kept with the connection (`HttpRequest::conn_data`) so that a handler
/// that streams to it can bound what the kernel holds for it (`bound_send_buffer`).
#[derive(Clone, Copy)]
pub struct AdminSocket(std::os::fd::RawFd);

/// On each admin connection: its events and audio leave at once, and its socket is kept for its handlers.
pub fn note_admin_socket(conn: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    if let Some(sock) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        send_at_once(sock, "admin");
        data.insert(AdminSocket(std::os::fd::AsRawFd::as_raw_fd(sock)));
    }
}

impl AdminSocket {
    /// Caps what the kernel holds unsent on this connection, so a peer that stops reading is noticed
    /// after seconds of audio, not megabytes. Only while its request is served: the connection, and so
    /// the descriptor, lives at least that long.
    pub fn bound_send_buffer(self, bytes: usize) {
        if let Err(e) = set_send_buffer(&self.0, bytes) {
            log::warn!("admin: SO_SNDBUF not set: {e}");
        }
    }
}

/// Sets TCP_NODELAY: a 20 ms frame is written the moment it is ready. Without it (the kernel's default,
/// and actix's) a small write waits while an earlier one is unacknowledged, up to a round trip, or the
/// peer's delayed ACK (40 ms): latency a loopback test never shows and a caller on a real network hears.
pub fn send_at_once(sock: &actix_rt::net::TcpStream, side: &str) {
    if let Err(e) = sock.set_nodelay(true) {
        log::warn!("{side}: TCP_NODELAY not set: {e}");
    }
}

/// Sets TCP_USER_TIMEOUT: a peer that stops reading (or vanishes) while we have data in flight is dropped by
/// the kernel after `ms`, even when the actor writing to the socket can no longer run.
pub fn set_send_timeout(sock: &impl std::os::fd::AsRawFd, ms: u64) -> std::io::Result<()> {
    set_int_option(sock, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)
}

/// Sets SO_SNDBUF (the kernel doubles the value for its bookkeeping, and stops autotuning it).
fn set_send_buffer(sock: &impl std::os::fd::AsRawFd, bytes: usize) -> std::io::Result<()> {
    set_int_option(sock, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes as u64)
}

fn set_int_option(
    sock: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: u64,
) -> std::io::Result<()> {
    let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `value` for its size; the fd is a live socket the caller borrows to us.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_socket_sends_at_once() {
        actix_rt::System::new().block_on(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let sock = actix_rt::net::TcpStream::connect(addr).await.expect("connect");
            assert!(
                !sock.nodelay().expect("read"),
                "the kernel's default holds small writes"
            );
            super::send_at_once(&sock, "test");
            assert!(sock.nodelay().expect("read"));
        });
    }
}
