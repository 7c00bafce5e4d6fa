"""The SMTP server the notification tests talk to (aiosmtpd, PyPI).

usage: smtp_receiver.py OUT_DIR PORT MODE [CERT KEY [USER PASSWORD]]
MODE: plain | starttls (STARTTLS offered and required) | implicit (TLS from
the first byte). With USER and PASSWORD, AUTH is required (over TLS only).
Each message is written to OUT_DIR/N.json: envelope, data, whether it came
over TLS and whether it logged in. Prints "ready" once it listens.
"""

import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out_dir, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cert, key = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
user, password = (sys.argv[6], sys.argv[7]) if len(sys.argv) > 7 else (None, None)
lock = threading.Lock()


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with lock:
            n = len([f for f in os.listdir(out_dir) if f.endswith(".json")])
            record = {
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
                # session.ssl is set by STARTTLS only; an implicit TLS transport says so itself.
                "tls": session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
                "authenticated": bool(session.authenticated),
            }
            tmp = os.path.join(out_dir, f"{n}.tmp")
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.rename(tmp, os.path.join(out_dir, f"{n}.json"))
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
    # handled=False: aiosmtpd answers a refusal with 535 itself.
    return AuthResult(success=ok, handled=False)


context = None
if cert:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

kwargs = dict(hostname="127.0.0.1", port=port)
if user:
    kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=True)
if mode == "starttls":
    kwargs.update(tls_context=context, require_starttls=True)
elif mode == "implicit":
    kwargs.update(ssl_context=context)

controller = Controller(Handler(), **kwargs)
controller.start()
print("ready", flush=True)
threading.Event().wait()
