# A north server's event stream client in Python's standard library: the
# events() function is docs/north-servers.md's, word for word (a test checks
# that it stays so). Usage: events_client.py BASE TOKEN COUNT [LAST_ID]
# prints COUNT events as JSON lines, [kind, event], then exits.
import json, urllib.request

def events(base, token, last_id=None):
    req = urllib.request.Request(base + "/north/events", headers={"Authorization": "Bearer " + token})
    if last_id:
        req.add_header("Last-Event-ID", last_id)
    with urllib.request.urlopen(req) as stream:   # HTTPError 401: log in again
        fields = {}
        for raw in stream:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if "data" in fields:
                    yield fields.get("event", "message"), json.loads(fields["data"])
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value


if __name__ == "__main__":
    import sys
    base, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    last = sys.argv[4] if len(sys.argv) > 4 else None
    for kind, ev in events(base, token, last):
        print(json.dumps([kind, ev], ensure_ascii=False), flush=True)
        count -= 1
        if count == 0:
            break
