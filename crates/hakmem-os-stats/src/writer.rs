//! The one printer of hakmem: a fixed-size stack buffer that implements
//! [`core::fmt::Write`] ([`StackWriter`]), a line-buffered writer to a file descriptor
//! ([`LineWriter`]), and `write(2)` itself ([`write_fd`], [`eprint_line`]).
//!
//! Every box prints through here: the gate warnings and the `HAKMEM_VERBOSE` report
//! (`hakmem-env-gates`), the counters at exit ([`crate::stats::print`]), fatal reports
//! ([`crate::report`], also used for the C ABI's bad-pointer reports), the bench's soak
//! lines. Anything printed from an allocator path goes through here, never through
//! `std` I/O or `format!`. Nothing here allocates or panics.

use core::fmt;

/// A `core::fmt::Write` sink into a `[u8; N]` on the stack.
///
/// Output beyond `N` bytes is dropped, cut at a UTF-8 character boundary, and
/// [`is_truncated`](Self::is_truncated) turns true; writing never fails and never panics,
/// so `let _ = write!(w, ..)` is the idiom.
///
/// ```
/// use core::fmt::Write;
/// use hakmem_os_stats::writer::StackWriter;
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

/// Formats `args` into a 512-byte stack buffer and writes it to `fd` as one line, with
/// one `write(2)` (a `'\n'` is added when missing; longer output is truncated). Never
/// allocates.
pub fn print_line(fd: libc::c_int, args: fmt::Arguments<'_>) {
    let mut w = StackWriter::<512>::new();
    let _ = fmt::Write::write_fmt(&mut w, args);
    w.end_line();
    w.write_to_fd(fd);
}

/// [`print_line`] to stderr.
///
/// ```
/// hakmem_os_stats::writer::eprint_line(format_args!("hakmem: {} superslabs cached", 2));
/// ```
pub fn eprint_line(args: fmt::Arguments<'_>) {
    print_line(libc::STDERR_FILENO, args);
}

/// A `fmt::Write` sink that buffers one line on the stack and writes each complete line
/// to `fd` with a single `write(2)`; lines longer than `N` bytes are truncated. Call
/// [`finish`](Self::finish) at the end to write a last line without `'\n'`.
///
/// ```
/// use core::fmt::Write;
/// let mut w = hakmem_os_stats::writer::LineWriter::<128>::new(2); // stderr
/// let _ = writeln!(w, "hakmem: first line");
/// let _ = write!(w, "hakmem: second {}", 2);
/// w.finish();
/// ```
pub struct LineWriter<const N: usize> {
    fd: libc::c_int,
    line: StackWriter<N>,
}

impl<const N: usize> LineWriter<N> {
    /// A writer to `fd` with an empty line buffer.
    pub const fn new(fd: libc::c_int) -> Self {
        LineWriter {
            fd,
            line: StackWriter::new(),
        }
    }

    /// Writes any partial last line (ended with `'\n'`).
    pub fn finish(&mut self) {
        if !self.line.is_empty() {
            self.line.end_line();
            self.line.write_to_fd(self.fd);
            self.line.clear();
        }
    }
}

impl<const N: usize> fmt::Write for LineWriter<N> {
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

#[cfg(test)]
mod tests {
    extern crate std;

    use core::fmt::Write;
    use std::string::String;
    use std::vec::Vec;

    use super::*;

    /// A pipe; the test writes into `.1` and reads everything back from `.0`.
    fn pipe() -> (libc::c_int, libc::c_int) {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid out-array of two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    }

    /// Closes `w` and reads `r` to its end.
    fn drain(r: libc::c_int, w: libc::c_int) -> String {
        // SAFETY: closing our own descriptor once.
        unsafe { libc::close(w) };
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            // SAFETY: reads at most `buf.len()` bytes into the stack buffer.
            let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        // SAFETY: closing our own descriptor once.
        unsafe { libc::close(r) };
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn stack_writer_truncates_instead_of_panicking() {
        let mut w = StackWriter::<10>::new();
        assert!(w.is_empty());
        w.write_str("0123456789abcdef").unwrap();
        assert_eq!(w.as_str(), "0123456789");
        assert!(w.is_truncated());
        write!(w, "more {}", 42).unwrap(); // still fine, still dropped
        assert_eq!(w.len(), 10);

        // Cut at a UTF-8 boundary: "é" is 2 bytes and does not fit in the last byte.
        let mut w = StackWriter::<4>::new();
        write!(w, "abcé").unwrap();
        assert_eq!(w.as_str(), "abc");
        w.end_line();
        assert_eq!(w.as_str(), "abc\n");
        let mut w = StackWriter::<4>::new();
        write!(w, "aé").unwrap();
        w.end_line();
        assert_eq!(w.as_str(), "aé\n");
        let mut w = StackWriter::<4>::new();
        write!(w, "aéé").unwrap(); // the second "é" does not fit
        w.end_line();
        assert_eq!(w.as_str(), "aé\n");
        assert!(w.is_truncated());
        let mut w = StackWriter::<4>::new();
        write!(w, "aaé").unwrap(); // exactly full
        assert!(!w.is_truncated());
        w.end_line(); // the last character makes room for '\n'
        assert_eq!(w.as_str(), "aa\n");
        assert!(w.is_truncated());

        // Zero capacity.
        let mut w = StackWriter::<0>::new();
        write!(w, "x").unwrap();
        w.end_line();
        assert_eq!(w.as_str(), "");
        assert!(w.is_truncated());

        w.clear();
        assert!(!w.is_truncated());
        let mut w = StackWriter::<16>::default();
        write!(w, "{:>5}|{:#x}", 7, 255u32).unwrap();
        assert_eq!(w.as_str(), "    7|0xff");
        assert!(!w.is_truncated());
        assert_eq!(w.capacity(), 16);
    }

    #[test]
    fn write_fd_writes_everything_and_ignores_bad_descriptors() {
        write_fd(-1, b"ignored"); // EBADF: returns, no panic
        let (r, w) = pipe();
        let big: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
        write_fd(w, &big);
        let mut sw = StackWriter::<8>::new();
        let _ = write!(sw, "|{}", 42);
        sw.write_to_fd(w);
        let got = drain(r, w);
        let mut want = String::from_utf8(big).unwrap();
        want.push_str("|42");
        assert!(got == want, "{} bytes back of {}", got.len(), want.len());
    }

    #[test]
    fn print_line_adds_one_newline_and_truncates() {
        let (r, w) = pipe();
        print_line(w, format_args!("hakmem: {} and {:#x}", 1, 255));
        print_line(w, format_args!("already ended\n"));
        let long = "x".repeat(600);
        print_line(w, format_args!("{long}"));
        let got = drain(r, w);
        let lines: Vec<&str> = got.split_inclusive('\n').collect();
        assert_eq!(lines[0], "hakmem: 1 and 0xff\n");
        assert_eq!(lines[1], "already ended\n");
        assert_eq!(lines[2].len(), 512, "cut to the buffer, '\\n' included");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn line_writer_writes_whole_lines_and_truncates_long_ones() {
        let (r, w) = pipe();
        let mut lw = LineWriter::<16>::new(w);
        let _ = write!(lw, "one\ntw");
        let _ = lw.write_str("o\na line longer than sixteen bytes\n");
        let _ = write!(lw, "last");
        lw.finish();
        lw.finish(); // nothing left: writes nothing
        assert_eq!(
            drain(r, w),
            "one\ntwo\na line longer t\nlast\n",
            "each line ends with '\\n', cut to 16 bytes with it"
        );
    }
}
