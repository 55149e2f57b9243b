//! Options for a span of option-less commands, restored on every path out.
//!
//! Commands such as `image_state`, `image_test` or `reset` take no options of their own: they
//! use the client's. A caller that needs other options for a while (a shorter timeout while
//! the board's power is off) borrows the client through [`Client::using`]; the client's own
//! options come back when the borrow ends — there is nothing to restore by hand, so a `?` or
//! an early return cannot leave a shortened timeout behind.

use super::{Client, RequestOptions};
use crate::transport::Transport;
use std::ops::{Deref, DerefMut};

/// The client, with `options` for its option-less commands while this value lives.
pub struct Using<'a, T: Transport> {
    client: &'a mut Client<T>,
    saved: RequestOptions,
}

impl<T: Transport> Client<T> {
    /// Borrow the client with `options` for option-less commands (`image_state`, `image_test`,
    /// `image_confirm`, `image_erase`, `reset`, `echo`, …) until the returned value is dropped.
    pub fn using(&mut self, options: RequestOptions) -> Using<'_, T> {
        let options = RequestOptions {
            tries: options.tries.max(1),
            ..options
        };
        let saved = std::mem::replace(&mut self.request_options, options);
        Using {
            client: self,
            saved,
        }
    }
}

impl<T: Transport> Deref for Using<'_, T> {
    type Target = Client<T>;
    fn deref(&self) -> &Client<T> {
        self.client
    }
}

impl<T: Transport> DerefMut for Using<'_, T> {
    fn deref_mut(&mut self) -> &mut Client<T> {
        self.client
    }
}

impl<T: Transport> Drop for Using<'_, T> {
    fn drop(&mut self) {
        self.client.request_options = self.saved;
    }
}
