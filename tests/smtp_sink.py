"""A local SMTP server for the tests (aiosmtpd): every message it receives is written to a
directory as <n>.json (envelope, subject, and each part: text inline, attachments saved beside
it as <n>-<filename>), so a test in any language can read what arrived.

Usage: smtp_sink.py PORT DIR. Runs until killed.
"""

import asyncio
import email
import json
import os
import sys
from email import policy

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "subject": str(msg["subject"]),
            "parts": [],
        }
        for part in msg.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True) or b""
            entry = {"content_type": part.get_content_type(), "filename": part.get_filename()}
            if entry["filename"]:
                saved = os.path.join(self.out, f"{n}-{entry['filename']}")
                with open(saved, "wb") as f:
                    f.write(payload)
                entry["saved"] = saved
            else:
                entry["text"] = payload.decode(part.get_content_charset() or "utf-8")
            record["parts"].append(entry)
        tmp = os.path.join(self.out, f"{n}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, f"{n}.json"))
        return "250 OK"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
