//! Options that travel with one call.
//!
//! Timeouts, tries, the upload window and a `buf_size` override describe what *this* call may
//! do, not what the link is. Kept as client state they had to be changed around a call and
//! restored by hand, and a restore that was missed or wrong silently changed every later call
//! (a power-cut upload's short timeout outliving it). Passed per call, a call cannot leak its
//! options into the next one.

use std::time::Duration;

use super::window::MAX_WINDOW;

/// Default per-request timeout (smpclient's 2.5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2500);
/// Default first-chunk timeout of a device known to be alive: it erases the slot before it
/// answers.
pub const DEFAULT_FIRST_CHUNK_TIMEOUT: Duration = Duration::from_secs(40);
/// Attempts per upload chunk before giving up.
pub const DEFAULT_UPLOAD_TRIES: u32 = 3;
/// Pause before resending a request the device refused with EBUSY.
pub const DEFAULT_BUSY_BACKOFF: Duration = Duration::from_millis(100);

/// How one request waits and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOptions {
    /// How long to wait for the answer (shortened to the client's deadline, if any).
    pub timeout: Duration,
    /// Attempts in all (minimum 1). A request is sent again only after a timeout or EBUSY,
    /// so a command with side effects should keep the default 1.
    pub tries: u32,
}

impl Default for RequestOptions {
    /// 2.5 s, one attempt: what every single command did before options existed.
    fn default() -> Self {
        RequestOptions {
            timeout: DEFAULT_TIMEOUT,
            tries: 1,
        }
    }
}

impl RequestOptions {
    /// One attempt with this timeout.
    pub fn timeout(timeout: Duration) -> Self {
        RequestOptions {
            timeout,
            ..RequestOptions::default()
        }
    }
}

/// How one upload runs. `UploadOptions::default()` is the behaviour of a plain upload: 2.5 s per
/// request, 40 s for the first chunk, 3 tries, window and buffer size from the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOptions {
    /// Wait for each answer; also the first chunk's while the device is not known to be there
    /// (it has not answered the last request on this client), so a dead link fails within
    /// `timeout` × `tries`.
    pub timeout: Duration,
    /// Wait for the first chunk's answer while the device is known alive (it answered the last
    /// request): Zephyr's img_mgmt erases the slot before it answers the first chunk
    /// (`img_mgmt.c`, `img_mgmt_upload` → `img_mgmt_erase_image_data()`, unless
    /// `CONFIG_IMG_ERASE_PROGRESSIVELY`), which takes seconds on a large slot.
    pub first_chunk_timeout: Duration,
    /// Attempts per request (minimum 1); in a windowed upload, timeouts or EBUSY answers in a
    /// row without a clean acknowledgement.
    pub tries: u32,
    /// Requests in flight: `None` derives it from the device's `buf_count` (params) as
    /// `buf_count − 1`, or 1 when unknown; `Some(n)` forces n (1 = stop-and-wait), clamped to
    /// 1..=[`MAX_WINDOW`]. Either way it is capped by what fits the receive lines.
    pub window: Option<usize>,
    /// The device's SMP buffer size for this upload instead of asking params (`None`: ask
    /// once per connection, falling back to 384).
    pub buf_size: Option<u32>,
    /// Pause before resending after EBUSY.
    pub busy_backoff: Duration,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            timeout: DEFAULT_TIMEOUT,
            first_chunk_timeout: DEFAULT_FIRST_CHUNK_TIMEOUT,
            tries: DEFAULT_UPLOAD_TRIES,
            window: None,
            buf_size: None,
            busy_backoff: DEFAULT_BUSY_BACKOFF,
        }
    }
}

impl UploadOptions {
    /// The options with `tries` at least 1 and the window within 1..=[`MAX_WINDOW`], so the
    /// upload loops never see an impossible value whatever the caller built.
    pub(crate) fn normalized(&self) -> UploadOptions {
        UploadOptions {
            tries: self.tries.max(1),
            window: self.window.map(|n| n.clamp(1, MAX_WINDOW)),
            ..*self
        }
    }

    /// The options of one upload request after the first chunk.
    pub(crate) fn chunk_request(&self) -> RequestOptions {
        RequestOptions {
            timeout: self.timeout,
            tries: self.tries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_plain_upload() {
        let o = UploadOptions::default();
        assert_eq!(o.timeout, Duration::from_millis(2500));
        assert_eq!(o.first_chunk_timeout, Duration::from_secs(40));
        assert_eq!(o.tries, 3);
        assert_eq!((o.window, o.buf_size), (None, None));
        assert_eq!(RequestOptions::default().tries, 1);
    }

    #[test]
    fn normalized_keeps_values_possible() {
        let o = UploadOptions {
            tries: 0,
            window: Some(0),
            ..UploadOptions::default()
        }
        .normalized();
        assert_eq!((o.tries, o.window), (1, Some(1)));
        let o = UploadOptions {
            window: Some(1000),
            ..UploadOptions::default()
        };
        assert_eq!(o.normalized().window, Some(MAX_WINDOW));
    }
}
