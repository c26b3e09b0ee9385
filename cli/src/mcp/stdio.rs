//! A guard between the real stdin/stdout and the MCP SDK's line transport.
//!
//! `rmcp` reads newline-delimited JSON; a line that is not JSON it drops
//! silently, and a line of any length it buffers whole. JSON-RPC 2.0 wants a
//! `-32700 Parse error` answer (id null) for the first, and a gateway wants a
//! bound on the second. So stdin is read here line by line, at most
//! [`MAX_MESSAGE`] bytes each: a line that parses as JSON goes on to the SDK;
//! one that does not, or is too long (skipped to its end), is answered here.
//! Answers from the SDK and from here are merged line by line onto stdout by
//! one writer, so they never interleave inside a message.

use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
    DuplexStream,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Longest JSON-RPC message accepted on stdin.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Buffer of each in-process pipe to and from the SDK.
const PIPE: usize = 64 * 1024;

/// The SDK's side of the guard: what it reads, what it writes.
pub type SdkSide = (DuplexStream, DuplexStream);

/// Starts the reader and writer tasks on `input`/`output` (stdin/stdout);
/// returns the SDK's side. The tasks end when stdin ends and the SDK has
/// closed its output.
pub fn guard<R, W>(input: R, output: W, tasks: &mut JoinSet<()>) -> SdkSide
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (to_sdk, sdk_in) = tokio::io::duplex(PIPE);
    let (sdk_out, from_sdk) = tokio::io::duplex(PIPE);
    let (errors_tx, errors_rx) = mpsc::channel::<String>(16);
    tasks.spawn(read_loop(input, to_sdk, errors_tx));
    tasks.spawn(write_loop(from_sdk, errors_rx, output));
    (sdk_in, sdk_out)
}

/// A JSON-RPC error without an id (the request could not be read).
fn error_line(code: i64, message: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message },
    })
    .to_string()
}

async fn read_loop<R: AsyncRead + Unpin>(
    input: R,
    mut to_sdk: DuplexStream,
    errors: mpsc::Sender<String>,
) {
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_MESSAGE).unwrap_or(u64::MAX);
    loop {
        line.clear();
        let n = match (&mut reader)
            .take(limit + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!("stdin: {e}");
                break;
            }
        };
        if n == 0 {
            break;
        }
        if line.len() > MAX_MESSAGE && line.last() != Some(&b'\n') {
            // Too long: skip to the end of the line, then say so.
            loop {
                line.clear();
                match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            let message = format!("message longer than {MAX_MESSAGE} bytes");
            if errors.send(error_line(-32600, &message)).await.is_err() {
                break;
            }
            continue;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(text).is_err() {
            if errors
                .send(error_line(-32700, "Parse error: not a JSON message"))
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        if to_sdk.write_all(text).await.is_err() || to_sdk.write_all(b"\n").await.is_err() {
            break;
        }
    }
    // End of stdin: the SDK sees end of input and stops.
    let _ = to_sdk.shutdown().await;
}

async fn write_loop<W: AsyncWrite + Unpin>(
    from_sdk: DuplexStream,
    mut errors: mpsc::Receiver<String>,
    mut output: W,
) {
    let mut lines = BufReader::new(from_sdk).lines();
    let mut errors_open = true;
    loop {
        let line = tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => line,
                // The SDK closed its output: the server is done (after
                // the answers already queued here).
                Ok(None) | Err(_) => {
                    while let Ok(line) = errors.try_recv() {
                        let _ = output.write_all(line.as_bytes()).await;
                        let _ = output.write_all(b"\n").await;
                    }
                    let _ = output.flush().await;
                    break;
                }
            },
            error = errors.recv(), if errors_open => match error {
                Some(line) => line,
                None => {
                    errors_open = false;
                    continue;
                }
            },
        };
        if output.write_all(line.as_bytes()).await.is_err()
            || output.write_all(b"\n").await.is_err()
            || output.flush().await.is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_lines_are_answered_and_good_ones_pass() {
        let (mut client, server_in) = tokio::io::duplex(1024);
        let (server_out, client_out) = tokio::io::duplex(1024);
        let mut tasks = JoinSet::new();
        let (mut sdk_in, mut sdk_out) = guard(server_in, server_out, &mut tasks);
        client.write_all(b"{nope\n{\"a\":1}\n").await.unwrap();
        let mut got = vec![0u8; 8];
        sdk_in.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"{\"a\":1}\n");
        sdk_out.write_all(b"{\"b\":2}\n").await.unwrap();
        drop(sdk_out);
        drop(client);
        let mut out = String::new();
        BufReader::new(client_out)
            .read_to_string(&mut out)
            .await
            .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            out.contains("-32700") && out.contains("\"id\":null"),
            "{out}"
        );
        assert!(lines.contains(&"{\"b\":2}"), "{out}");
    }
}
