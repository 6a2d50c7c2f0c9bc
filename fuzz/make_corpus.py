#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from the repository's own test vectors.

- pdu_decode: every hex PDU quoted in src/ and tests/, as octets behind a control byte (with
  and without the SMSC field), and a few as text.
- at_lines: modem output quoted in the AT codec's tests, the virtual modem and tests/modem.rs,
  behind control bytes picking the command in flight, the prompt and the read sizes.
- sip_datagram: the messages of the SIPp scenarios in tests/sipp/ (their [keywords] filled in as
  SIPp would), and the SIP messages quoted in src/sip/ tests.
- sip_stream: the same messages with Content-Length, two to a stream, with keep-alives.
- config_parse: config/*.toml without comments, and the example cut into its sections on a
  minimal config.

Run from anywhere: python3 fuzz/make_corpus.py. It replaces the corpus directories.
"""

import hashlib
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

STRING = re.compile(r'(b?)"((?:[^"\\]|\\.|\\\n)*)"', re.S)


def rust_strings(path):
    """The contents of the plain string and byte-string literals in a Rust file, unescaped."""
    text = path.read_text(encoding="utf-8")
    out = []
    for match in STRING.finditer(text):
        body = match.group(2)
        body = re.sub(r"\\\n\s*", "", body)  # line continuation
        data = bytearray()
        i = 0
        while i < len(body):
            c = body[i]
            if c == "\\" and i + 1 < len(body):
                e = body[i + 1]
                simple = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}
                if e in simple:
                    data += simple[e]
                    i += 2
                    continue
                if e == "x":
                    data.append(int(body[i + 2 : i + 4], 16))
                    i += 4
                    continue
                if e == "u":
                    end = body.index("}", i)
                    data += chr(int(body[i + 3 : end], 16)).encode()
                    i = end + 1
                    continue
            data += c.encode()
            i += 1
        out.append(bytes(data))
    return out


def write(target, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    (directory / name).write_bytes(data)


def rust_files(*globs):
    files = []
    for pattern in globs:
        files += sorted(ROOT.glob(pattern))
    return files


def pdu_seeds():
    hexes = set()
    for path in rust_files("src/**/*.rs", "tests/*.rs"):
        for s in rust_strings(path):
            if re.fullmatch(rb"(?:[0-9A-F]{2}){10,}", s) or re.fullmatch(rb"(?:[0-9a-f]{2}){10,}", s):
                hexes.add(s.decode())
    for hex_text in sorted(hexes):
        octets = bytes.fromhex(hex_text)
        write("pdu_decode", bytes([0]) + octets)  # SMSC field present
        write("pdu_decode", bytes([1]) + octets)  # bare TPDU
    for hex_text in sorted(hexes)[:8]:
        write("pdu_decode", bytes([2]) + hex_text.encode())  # as text
    write("pdu_decode", bytes([2]) + b"07911326040000F0040B91 not hex")
    return len(hexes)


AT_HINTS = (b"OK", b"ERROR", b"+C", b"^", b"RING", b"> ", b"RDY", b"SMS", b"NO CARRIER", b"MISSED_CALL", b"+Q")


def at_seeds():
    streams = set()
    for path in rust_files("src/codec/at.rs", "src/modem/*.rs", "tests/modem.rs"):
        for s in rust_strings(path):
            if any(hint in s for hint in AT_HINTS) and (b"\r" in s or b"\n" in s) and len(s) < 2048:
                streams.add(s)
    streams = sorted(streams)
    # Control byte: bit 0 prompt expected, bits 1-4 the command (see COMMANDS in src/lib.rs), the
    # rest the read sizes; 0x80 reads one byte at a time.
    for index, stream in enumerate(streams):
        command = index % 12
        write("at_lines", bytes([command << 1]) + stream)
        if b">" in stream:
            write("at_lines", bytes([(2 << 1) | 1]) + stream)
    write("at_lines", bytes([0x80]) + b"\r\nRING\r\n\r\n+CLIP: \"07700900123\",129,,,,0\r\n")
    # What modems send on their own and in answer to the actor's commands (hardware/README.md).
    pdu = b"07914477790706520414D0E474989D769F5DE4320839001040122151820000"
    lines = [
        b'+CMTI: "SM",3', b'+CDSI: "SM",4', b"+CMT: ,24\r\n" + pdu, b"+CDS: 25\r\n" + pdu,
        b"+CMGL: 1,0,,24\r\n" + pdu + b"\r\n\r\nOK", b"+CMGR: 0,,24\r\n" + pdu + b"\r\n\r\nOK",
        b"+CME ERROR: 10", b"+CMS ERROR: 330", b"+CME ERROR: SIM busy",
        b'+CPMS: "SM",5,30,"SM",5,30,"SM",5,30', b"+CREG: 0,1", b"+CREG: 5", b"+CSQ: 17,99",
        b'^SMMEMFULL: "SM"', b'+QIND: "smsfull","SM"', b"+QIND: SMS DONE",
        b"MISSED_CALL: 11:01AM 07700900123", b"^RSSI: 17", b"RDY", b"+CPIN: READY", b"SMS DONE",
        b"NO CARRIER", b"+CMGS: 7\r\n\r\nOK", b'RING\r\n\r\n+CLIP: "+447700900123",145,"",0,"",0',
    ]
    for index, line in enumerate(lines):
        write("at_lines", bytes([(index % 12) << 1]) + b"\r\n" + line + b"\r\n")
    return len(streams) + len(lines)


SIPP_VALUES = {
    "service": "textback",
    "remote_ip": "192.0.2.10",
    "remote_port": "5060",
    "local_ip": "203.0.113.5",
    "local_port": "5062",
    "transport": "UDP",
    "branch": "z9hG4bK-1-0",
    "pid": "4242",
    "call_number": "1",
    "call_id": "1-4242@203.0.113.5",
    "local_ip_type": "4",
    "media_ip_type": "4",
    "media_ip": "203.0.113.5",
    "media_port": "6000",
    "cseq": "1",
}


def sipp_messages():
    messages = []
    for path in sorted((ROOT / "tests" / "sipp").glob("*.xml")):
        text = path.read_text(encoding="iso-8859-1")
        for block in re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", text, re.S):
            block = block.strip("\n")
            block = block.replace("[last_Via:]", "Via: SIP/2.0/UDP 203.0.113.5:5062;branch=z9hG4bK-1-0")
            block = block.replace("[last_To:]", "To: <sip:+441632960123@192.0.2.10:5060>;tag=tb1")
            for key, value in SIPP_VALUES.items():
                block = block.replace(f"[{key}]", value)
            head, _, body = block.partition("\n\n")
            body = body.replace("\n", "\r\n") + ("\r\n" if body else "")
            head = head.replace("[len]", str(len(body.encode())))
            lines = [line for line in head.split("\n") if line]
            messages.append(("\r\n".join(lines) + "\r\n\r\n" + body).encode("iso-8859-1"))
    return messages


def quoted_sip_messages():
    messages = []
    for path in rust_files("src/sip/*.rs", "tests/sip.rs"):
        for s in rust_strings(path):
            starts = re.match(rb"(?:[A-Z]+ sip:|[A-Z]+ tel:|SIP/2\.0 \d{3})", s)
            if starts and b"\r\n" in s and b"Call-ID" in s or (starts and b"\ni:" in s):
                messages.append(s)
    return messages


def sip_seeds():
    sipp = sipp_messages()
    quoted = quoted_sip_messages()
    everything = sorted(set(sipp + quoted))
    for message in everything:
        write("sip_datagram", message)
    framed = [m for m in everything if re.search(rb"\n(?:Content-Length|l)\s*:", m, re.I)]
    # Control byte: the read sizes; bit 6 repeats the stream.
    for index, message in enumerate(framed):
        other = framed[(index + 1) % len(framed)]
        write("sip_stream", bytes([index % 64]) + message + b"\r\n\r\n" + other)
    write("sip_stream", bytes([0x80]) + b"\r\n\r\n\r\n")
    write("sip_stream", bytes([0x41]) + framed[0])
    return len(everything), len(framed)


MINIMAL = """[[modem]]
id = "main"
port = "/dev/null"

[[profile]]
id = "acme"
name = "Acme Plumbing"
numbers = ["020 7946 0018"]
"""


def config_seeds():
    # Without their comments: the example is mostly comments, and every byte of a seed costs
    # execution time; the keys in its comments are in the dictionary.
    for path in sorted((ROOT / "config").glob("*.toml")):
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        write("config_parse", ("\n".join(kept) + "\n").encode())
    write("config_parse", MINIMAL.encode())
    example = (ROOT / "config" / "textback.example.toml").read_text(encoding="utf-8")
    # The example with the keys and sections it shows commented out ([[sip]], WhatsApp, ...) set.
    uncommented = []
    for line in example.splitlines():
        shown = re.match(r"^#\s?(\[\[?[a-z_.]+\]\]?\s*$|[a-z_]+\s*=.*)$", line)
        if shown:
            uncommented.append(shown.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            uncommented.append(line)
    write("config_parse", ("\n".join(uncommented) + "\n").encode())
    sections = re.split(r"(?m)^(?=\[)", example)
    count = 0
    for section in sections:
        if section.startswith("[") and not section.startswith(("[[modem]]", "[[profile")):
            kept = [line for line in section.splitlines() if not line.lstrip().startswith("#")]
            write("config_parse", (MINIMAL + "\n" + "\n".join(kept) + "\n").encode())
            count += 1
    return count


def config_dictionary():
    """The section names and keys of the example config, for AFL++'s -x."""
    example = (ROOT / "config" / "textback.example.toml").read_text(encoding="utf-8")
    tokens = set(re.findall(r"(?m)^#?\s*(\[\[?[a-z_.]+\]\]?)", example))
    tokens |= {key + " = " for key in re.findall(r"(?m)^#?\s*([a-z_]+)\s*=", example)}
    tokens |= {'"', "'''", "[", "]", "{", "}", " = ", "true", "false", "\n", "1979-05-27T07:32:00Z", "1e400", "-0"}
    lines = ["# Section names and keys of config/textback.example.toml, made by fuzz/make_corpus.py."]
    for token in sorted(tokens):
        escaped = token.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\x0a")
        lines.append(f'"{escaped}"')
    (ROOT / "fuzz" / "dict" / "config.dict").write_text("\n".join(lines) + "\n")
    return len(tokens)


def main():
    for target in ("pdu_decode", "at_lines", "sip_datagram", "sip_stream", "config_parse"):
        shutil.rmtree(CORPUS / target, ignore_errors=True)
    pdus = pdu_seeds()
    streams = at_seeds()
    messages, framed = sip_seeds()
    sections = config_seeds()
    keys = config_dictionary()
    print(f"{pdus} PDUs, {streams} AT transcripts, {messages} SIP messages ({framed} framed), {sections} config sections, {keys} config tokens")
    for target in sorted(p.name for p in CORPUS.iterdir()):
        files = list((CORPUS / target).iterdir())
        print(f"  {target}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
