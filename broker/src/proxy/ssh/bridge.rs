//! Target → client half of one session channel: everything the target's
//! channel says (output, stderr, EOF, exit status, exit signal, close) is
//! passed to the client's channel in order, and output is recorded. The
//! client → target half runs in the [`super::server`] handler callbacks.

use std::sync::{Arc, Mutex};

use russh::server::Handle;
use russh::{ChannelId, ChannelMsg, ChannelReadHalf};

use super::recording::ChannelRecord;

/// Where the channel's recording is, once the client says what the channel
/// is for (shell, exec, sftp).
pub type RecordSlot = Arc<Mutex<Option<Arc<ChannelRecord>>>>;

fn current(slot: &RecordSlot) -> Option<Arc<ChannelRecord>> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Runs until the target closes the channel (or the client session ends).
pub async fn target_to_client(
    mut up: ChannelReadHalf,
    client: Handle,
    id: ChannelId,
    slot: RecordSlot,
) {
    while let Some(msg) = up.wait().await {
        let sent = match msg {
            ChannelMsg::Data { data } => {
                if let Some(r) = current(&slot) {
                    r.output(&data);
                }
                client.data(id, data).await.is_ok()
            }
            ChannelMsg::ExtendedData { data, ext } => {
                if let Some(r) = current(&slot) {
                    r.output(&data);
                }
                client.extended_data(id, ext, data).await.is_ok()
            }
            ChannelMsg::Eof => client.eof(id).await.is_ok(),
            ChannelMsg::ExitStatus { exit_status } => {
                if let Some(r) = current(&slot) {
                    r.exit_status(exit_status);
                }
                client.exit_status_request(id, exit_status).await.is_ok()
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => {
                if let Some(r) = current(&slot) {
                    r.exit_signal(&format!("{signal_name:?}"));
                }
                client
                    .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                    .await
                    .is_ok()
            }
            ChannelMsg::Close => break,
            // Replies to requests the broker sent without want_reply, window
            // adjustments, and requests a server has no business sending.
            _ => true,
        };
        if !sent {
            // The client side is gone.
            break;
        }
    }
    if let Some(r) = current(&slot) {
        r.finish();
    }
    let _ = client.close(id).await;
}
