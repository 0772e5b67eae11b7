#!/usr/bin/env python3
"""A real SMTP server for missive's email tests and benchmark (aiosmtpd).

Listens on 127.0.0.1, prints `READY <port>` once it accepts connections, and runs until
killed. Every message it accepts (and, with --mode drop-after-data or hang, every message
it received the whole of) is stored in --dir as NNNN.eml plus NNNN.json: the envelope and
the message parsed back with Python's email module (headers, MIME structure, text and HTML
bodies, attachments written beside as NNNN-K.<ext>).

--mode tells it how to (mis)behave:
  accept           250 for every message
  drop-after-data  store the message, then close the connection without replying
  hang             store the message, then never reply (the client must be killed)
  421              answer 421 to every message's DATA (service not available)
  451-once         answer 451 to the first DATA of each Message-ID, accept the next
  550              answer 550 to RCPT TO (no such mailbox)
  discard          accept and store nothing (benchmark sink); counts in --dir/count
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import sys
import threading

from aiosmtpd.controller import Controller


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def structure(part, depth=0):
    out = [{"depth": depth, "content_type": part.get_content_type()}]
    if part.is_multipart():
        for sub in part.iter_parts():
            out.extend(structure(sub, depth + 1))
    return out


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        # A server restarted on the same directory appends after what is there.
        self.count = len([n for n in os.listdir(directory) if n.endswith(".json")])

    def save(self, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        stem = os.path.join(self.directory, f"{n:04d}")
        raw = envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        attachments = []
        for k, att in enumerate(msg.iter_attachments()):
            data = att.get_content()
            ext = (att.get_filename() or "bin").rsplit(".", 1)[-1]
            path = f"{stem}-{k}.{ext}"
            with open(path, "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())
            attachments.append({
                "filename": att.get_filename(),
                "content_type": att.get_content_type(),
                "file": os.path.basename(path),
            })
        body = lambda kind: (lambda p: p.get_content() if p is not None else None)(
            msg.get_body(preferencelist=(kind,)))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "reply_to": str(msg["Reply-To"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "message_id": str(msg["Message-ID"]),
            "date": str(msg["Date"]),
            "structure": structure(msg),
            "text": body("plain"),
            "html": body("html"),
            "attachments": attachments,
        }
        with open(stem + ".eml", "wb") as f:
            f.write(raw)
        # The JSON is written last, under a temporary name: a NNNN.json file is complete.
        with open(stem + ".json.tmp", "w") as f:
            json.dump(record, f, indent=1)
        os.replace(stem + ".json.tmp", stem + ".json")


class Handler:
    def __init__(self, mode, store):
        self.mode = mode
        self.store = store
        self.refused_once = set()
        self.discarded = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "550":
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "discard":
            self.discarded += 1
            return "250 2.0.0 OK discarded"
        if self.mode == "421":
            return "421 4.3.2 Service not available, closing transmission channel"
        if self.mode == "451-once":
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            mid = str(msg["Message-ID"])
            if mid not in self.refused_once:
                self.refused_once.add(mid)
                return "451 4.3.0 Temporary failure, try again"
        self.store.save(envelope)
        if self.mode == "drop-after-data":
            server.transport.abort()
            return "250 2.0.0 never seen by the client"
        if self.mode == "hang":
            await asyncio.sleep(3600)
        return "250 2.0.0 Ok: queued as %04d" % self.store.count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", default="accept",
                        choices=["accept", "drop-after-data", "hang", "421", "451-once",
                                 "550", "discard"])
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    port = args.port or free_port()
    handler = Handler(args.mode, Store(args.dir))
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            enable_SMTPUTF8=True, data_size_limit=64 * 1024 * 1024)
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
