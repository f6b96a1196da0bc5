//! Embedding portcullis in another tokio program on a listener you choose.
//!
//! ```text
//! cargo run --example embed -- 127.0.0.1:0
//! ```
//!
//! Builds the server on the given address (port 0 picks a free one) with a throwaway data
//! directory, checks it answers `/healthz` over a raw TCP request, and shuts it down again —
//! the same `Application::build` / `run_until_stopped` pair the test suite uses.

use std::time::Duration;

use portcullis::{Application, ServeConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let data_dir = std::env::temp_dir().join(format!("portcullis-embed-{}", std::process::id()));

    let mut config = ServeConfig::defaults();
    config.listen = listen.parse()?;
    config.data_dir = data_dir.clone();

    let app = Application::build(&config).await?;
    let addr = app.local_addr();
    println!(
        "embedded portcullis on http://{addr} (data in {})",
        data_dir.display()
    );

    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    // Any HTTP client works; a raw request keeps this example dependency-free.
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await??;
    println!("{}", answer.lines().next().unwrap_or_default());

    let _ = stop.send(());
    server.await??;
    std::fs::remove_dir_all(&data_dir)?;
    Ok(())
}
