//! Status codes, the thread-local last-error message, and [`guard`], the wrapper every entry
//! point runs its body in so that no panic crosses the C boundary.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call returned (`gradcon_status` in the header).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradconStatus {
    /// `GRADCON_OK`.
    Ok = 0,
    /// `GRADCON_ERR_NULL_ARGUMENT`: a pointer that must not be NULL was NULL.
    NullArgument = 1,
    /// `GRADCON_ERR_INVALID_ARGUMENT`: an argument out of range.
    InvalidArgument = 2,
    /// `GRADCON_ERR_IO`: a file could not be read.
    Io = 3,
    /// `GRADCON_ERR_FORMAT`: model bytes that break their format.
    Format = 4,
    /// `GRADCON_ERR_INTERNAL`: a caught panic or an impossible state.
    Internal = 5,
}

impl GradconStatus {
    /// Every status, in the order of their values.
    pub const ALL: [GradconStatus; 6] = [
        GradconStatus::Ok,
        GradconStatus::NullArgument,
        GradconStatus::InvalidArgument,
        GradconStatus::Io,
        GradconStatus::Format,
        GradconStatus::Internal,
    ];

    /// The header's name of the status, NUL-terminated.
    pub fn name(self) -> &'static std::ffi::CStr {
        match self {
            GradconStatus::Ok => c"GRADCON_OK",
            GradconStatus::NullArgument => c"GRADCON_ERR_NULL_ARGUMENT",
            GradconStatus::InvalidArgument => c"GRADCON_ERR_INVALID_ARGUMENT",
            GradconStatus::Io => c"GRADCON_ERR_IO",
            GradconStatus::Format => c"GRADCON_ERR_FORMAT",
            GradconStatus::Internal => c"GRADCON_ERR_INTERNAL",
        }
    }

    /// The status a library error maps to.
    pub fn of(e: &detector::Error) -> GradconStatus {
        use detector::Error;
        match e {
            Error::Io { .. } => GradconStatus::Io,
            Error::Format { .. } | Error::Missing { .. } => GradconStatus::Format,
            Error::InvalidArgument { .. } | Error::InvalidOption { .. } => {
                GradconStatus::InvalidArgument
            }
            // Tensor and autograd errors (shape errors inside the model) and the training-only
            // variants cannot come from valid scoring: they mean a bug.
            _ => GradconStatus::Internal,
        }
    }
}

/// A failed call: its status and the message `gradcon_last_error` will return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Never [`GradconStatus::Ok`].
    pub status: GradconStatus,
    /// What was wrong, without the function's name (the guard adds it).
    pub message: String,
}

impl Failure {
    /// A [`GradconStatus::NullArgument`] failure for the parameter `name`.
    pub fn null(name: &str) -> Self {
        Self {
            status: GradconStatus::NullArgument,
            message: format!("`{name}` is NULL"),
        }
    }

    /// A [`GradconStatus::InvalidArgument`] failure.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: GradconStatus::InvalidArgument,
            message: message.into(),
        }
    }

    /// `message: ` in front of the message (e.g. which image of a batch).
    pub fn context(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl From<detector::Error> for Failure {
    fn from(e: detector::Error) -> Self {
        Self {
            status: GradconStatus::of(&e),
            message: e.to_string(),
        }
    }
}

thread_local! {
    /// The message of the last failed call on this thread (`None`: no call has failed).
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Stores `message` as this thread's last error (NUL bytes, which C cannot show, become
/// spaces).
pub fn set_last_error(message: String) {
    let mut bytes = message.into_bytes();
    for b in bytes.iter_mut().filter(|b| **b == 0) {
        *b = b' ';
    }
    let message = CString::new(bytes).unwrap_or_default();
    // A thread being torn down has no message slot left; its message has no reader either.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = Some(message));
}

/// This thread's last error message; a pointer to `""` if no call has failed on it. The
/// pointer stays valid until the message is replaced (the next failed call on this thread) or
/// the thread ends.
pub fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ref().map(|m| m.as_ptr()))
        .ok()
        .flatten()
        .unwrap_or(c"".as_ptr())
}

/// Runs an entry point's `body`: returns its status, records the message of a failure, and
/// turns a panic into [`GradconStatus::Internal`] so it never unwinds into C.
///
/// `func` is the C function's name; every message starts with it.
pub fn guard(func: &str, body: impl FnOnce() -> Result<(), Failure>) -> GradconStatus {
    // The body only reads the caller's buffers and a detector behind a shared reference (or
    // builds a new one): a panic leaves nothing half-changed that a later call could see, so
    // asserting unwind safety is sound.
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return GradconStatus::Ok,
        Ok(Err(failure)) => failure,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            // Dropping the payload could itself panic (a payload with a panicking Drop): drop
            // it under a second catch, and leak that second payload rather than unwind.
            if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(again);
            }
            Failure {
                status: GradconStatus::Internal,
                message: format!("internal error (a panic was caught): {what}"),
            }
        }
    };
    debug_assert_ne!(failure.status, GradconStatus::Ok);
    let status = failure.status;
    // Formatting a message cannot panic short of allocation failure, which aborts anyway.
    set_last_error(format!("{func}: {}", failure.message));
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last_error() -> String {
        // SAFETY: `last_error_ptr` returns a NUL-terminated string that stays valid until the
        // next failure on this thread; it is copied at once.
        unsafe { CStr::from_ptr(last_error_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        let status = guard("gradcon_test", || panic!("boom {}", 42));
        assert_eq!(status, GradconStatus::Internal);
        assert_eq!(
            last_error(),
            "gradcon_test: internal error (a panic was caught): boom 42"
        );
        let status = guard("gradcon_test", || std::panic::panic_any(7u8));
        assert_eq!(status, GradconStatus::Internal);
        assert!(last_error().ends_with("a panic without a message"));
    }

    #[test]
    fn messages_are_per_thread_and_kept_across_successes() {
        assert_eq!(last_error(), "");
        let status = guard("gradcon_test", || Err(Failure::null("out")));
        assert_eq!(status, GradconStatus::NullArgument);
        assert_eq!(last_error(), "gradcon_test: `out` is NULL");
        assert_eq!(guard("gradcon_test", || Ok(())), GradconStatus::Ok);
        assert_eq!(last_error(), "gradcon_test: `out` is NULL");
        let other = std::thread::spawn(last_error).join().unwrap();
        assert_eq!(other, "");
    }

    #[test]
    fn nul_bytes_in_a_message_become_spaces() {
        guard("gradcon_test", || Err(Failure::invalid("a\0b")));
        assert_eq!(last_error(), "gradcon_test: a b");
    }

    #[test]
    fn library_errors_map_to_statuses() {
        let io = detector::Error::io("m.gcm", "read", std::io::ErrorKind::NotFound.into());
        assert_eq!(GradconStatus::of(&io), GradconStatus::Io);
        let format = detector::Error::format("m.gcm", "bad magic");
        assert_eq!(GradconStatus::of(&format), GradconStatus::Format);
        let invalid = detector::Error::invalid("Image", "2 channels");
        assert_eq!(GradconStatus::of(&invalid), GradconStatus::InvalidArgument);
        assert_eq!(
            GradconStatus::of(&detector::Error::DataDirUnset),
            GradconStatus::Internal
        );
    }
}
