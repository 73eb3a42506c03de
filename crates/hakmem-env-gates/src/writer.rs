//! Printing without allocating: a fixed-size stack buffer that implements
//! [`core::fmt::Write`], and `write(2)` to a file descriptor.
//!
//! Other boxes reuse these for statistics and error messages: anything printed from an
//! allocator path must go through here, never through `std` I/O or `format!`.

use core::fmt;

/// A `core::fmt::Write` sink into a `[u8; N]` on the stack.
///
/// Output beyond `N` bytes is dropped, cut at a UTF-8 character boundary, and
/// [`is_truncated`](Self::is_truncated) turns true; writing never fails and never panics,
/// so `let _ = write!(w, ..)` is the idiom.
///
/// ```
/// use core::fmt::Write;
/// use hakmem_env_gates::StackWriter;
///
/// let mut w = StackWriter::<8>::new();
/// let _ = write!(w, "{}-{}", 12, "abcdefgh");
/// assert_eq!(w.as_str(), "12-abcde");
/// assert!(w.is_truncated());
/// ```
pub struct StackWriter<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> StackWriter<N> {
    /// An empty writer.
    #[inline]
    pub const fn new() -> Self {
        StackWriter {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// The bytes written so far (always valid UTF-8).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The text written so far.
    #[inline]
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s or prefixes cut at a char boundary are ever copied in, so the
        // contents are UTF-8; the fallback is unreachable but cheaper than a proof.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Bytes written so far.
    #[inline]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Nothing written yet.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The capacity, `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Some output was dropped because the buffer was full.
    #[inline]
    pub const fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Forgets the contents (and the truncation flag).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }

    /// Makes the contents end with `'\n'`: appends one, or, when the buffer is full,
    /// replaces the last character(s) with it. Does nothing when `N == 0`.
    pub fn end_line(&mut self) {
        if self.as_bytes().last() == Some(&b'\n') {
            return;
        }
        if self.len >= N {
            if N == 0 {
                return;
            }
            self.truncated = true;
            // Back up to a char boundary that leaves room for one byte.
            let mut cut = N - 1;
            while cut > 0 && !self.as_str().is_char_boundary(cut) {
                cut -= 1;
            }
            self.len = cut;
        }
        self.push_bytes(b"\n");
    }

    /// Writes the contents to file descriptor `fd` with `write(2)` (see [`write_fd`]).
    #[inline]
    pub fn write_to_fd(&self, fd: libc::c_int) {
        write_fd(fd, self.as_bytes());
    }

    /// Ends the line (see [`end_line`](Self::end_line)), writes it to stderr with one
    /// `write(2)` and clears the buffer.
    pub fn flush_line_to_stderr(&mut self) {
        self.end_line();
        self.write_to_fd(libc::STDERR_FILENO);
        self.clear();
    }

    /// Appends as much of `bytes` as fits; the caller guarantees the cut is acceptable.
    fn push_bytes(&mut self, bytes: &[u8]) {
        let room = N.saturating_sub(self.len);
        let take = bytes.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            bytes.get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len += take;
        }
        if take < bytes.len() {
            self.truncated = true;
        }
    }
}

impl<const N: usize> Default for StackWriter<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for StackWriter<N> {
    /// Never returns an error: what does not fit is dropped (see the type's doc).
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N.saturating_sub(self.len);
        if s.len() <= room {
            self.push_bytes(s.as_bytes());
        } else {
            let mut cut = room;
            while cut > 0 && !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.push_bytes(s.as_bytes().get(..cut).unwrap_or(&[]));
            self.truncated = true;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for StackWriter<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackWriter")
            .field("text", &self.as_str())
            .field("capacity", &N)
            .field("truncated", &self.truncated)
            .finish()
    }
}

/// Writes all of `bytes` to `fd` with `write(2)`, retrying on `EINTR` and after short
/// writes, giving up silently on any other error (there is nowhere to report it).
pub fn write_fd(fd: libc::c_int, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a live, initialized slice, so its pointer is valid for reads of
        // `rest.len()` bytes for the duration of the call; write(2) does not retain it.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            if errno_is_eintr() {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        rest = rest.get(n.unsigned_abs()..).unwrap_or(&[]);
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno_is_eintr() -> bool {
    // SAFETY: __errno_location returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() == libc::EINTR }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn errno_is_eintr() -> bool {
    false
}

/// Formats `args` into a 512-byte stack buffer and writes it to stderr as one line (a
/// `'\n'` is added when missing; longer output is truncated). Never allocates.
///
/// ```
/// hakmem_env_gates::eprint_line(format_args!("hakmem: {} superslabs cached", 2));
/// ```
pub fn eprint_line(args: fmt::Arguments<'_>) {
    let mut w = StackWriter::<512>::new();
    let _ = fmt::Write::write_fmt(&mut w, args);
    w.flush_line_to_stderr();
}

/// A `fmt::Write` sink that buffers one line on the stack and writes each complete line
/// to `fd` with a single `write(2)`; lines longer than `N` bytes are truncated.
pub(crate) struct FdLineWriter<const N: usize> {
    fd: libc::c_int,
    line: StackWriter<N>,
}

impl<const N: usize> FdLineWriter<N> {
    pub(crate) const fn new(fd: libc::c_int) -> Self {
        FdLineWriter {
            fd,
            line: StackWriter::new(),
        }
    }

    /// Writes any partial last line.
    pub(crate) fn finish(&mut self) {
        if !self.line.is_empty() {
            self.line.end_line();
            self.line.write_to_fd(self.fd);
            self.line.clear();
        }
    }
}

impl<const N: usize> fmt::Write for FdLineWriter<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(pos) = rest.find('\n') {
            let (head, tail) = rest.split_at(pos);
            let _ = self.line.write_str(head);
            self.line.end_line();
            self.line.write_to_fd(self.fd);
            self.line.clear();
            rest = tail.get(1..).unwrap_or("");
        }
        self.line.write_str(rest)
    }
}
