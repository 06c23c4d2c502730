#!/usr/bin/python3
"""gen_nginx.py — write an nginx.conf serving a hub layout on loopback.

    gen_nginx.py PREFIX PORT WWW META.json REPO [LIMIT_RATE]

WWW holds the static API answers written by `hubd.py --export`
(api/models/REPO/revision/REV, .../tree/REV); META.json (also from --export)
lists the files with their sizes and oids. Every file gets a location for
/REPO/resolve/{main,COMMIT}/PATH with the headers the hub sends
(X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size). Runs as the current
user with everything under PREFIX. LIMIT_RATE (e.g. "50m", bytes/s) caps
every response, as a CDN edge caps each connection.
With TLS_CERT and TLS_KEY in the environment (PEM files) it listens with
TLS and HTTP/2 instead, and logs each request's protocol to
PREFIX/access.log ("HTTP/2.0 /acme/x/resolve/...").
"""
import json
import os
import sys

prefix, port, www, meta_path, repo = sys.argv[1:6]
limit = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] else None
meta = json.load(open(meta_path))
cert, key = os.environ.get("TLS_CERT"), os.environ.get("TLS_KEY")
if cert and key:
    listen = (f"listen 127.0.0.1:{port} ssl http2;\n"
              f"        ssl_certificate {cert};\n        ssl_certificate_key {key};")
    log = (f"log_format proto '$server_protocol $request_uri';\n"
           f"    access_log {prefix}/access.log proto;")
else:
    listen, log = f"listen 127.0.0.1:{port};", "access_log off;"

commit = meta["commit"]
user = "user root;\n" if os.getuid() == 0 else ""
out = [f"""{user}worker_processes 2;
daemon on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    {log}
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    keepalive_timeout 60;
    types {{ }}
    default_type application/octet-stream;
    server {{
        {listen}
        {"limit_rate " + limit + ";" if limit else ""}
        location /api/ {{
            root {www};
            default_type application/json;
        }}
"""]
for path, f in sorted(meta["files"].items()):
    # nginx matches the decoded URI; quote it for names with spaces
    assert '"' not in path and "\\" not in path
    etag = f["lfs"] or f["oid"]
    for rev in ("main", commit):
        hdr = [f'add_header X-Repo-Commit {commit} always;',
               f'add_header ETag \'"{etag}"\' always;']
        if f["lfs"]:
            hdr += [f'add_header X-Linked-Etag \'"{f["lfs"]}"\' always;',
                    f'add_header X-Linked-Size {f["size"]} always;']
        out.append(f"""        location = "/{repo}/resolve/{rev}/{path}" {{
            alias "{f["full"]}";
            etag off;
            {' '.join(hdr)}
        }}
""")
out.append("    }\n}\n")
open(os.path.join(prefix, "nginx.conf"), "w").write("".join(out))
