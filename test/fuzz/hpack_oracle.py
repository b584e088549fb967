"""The independent HPACK implementation for the differential fuzz target: Debian's python3-hpack.

Reads JSON lines from stdin, each {"cases": [[block, ...], ...], "maxHeaderListSize": n} where a
block is a latin1 string (one char per octet). Decodes the blocks of each case in order with one
Decoder, stopping at the first error, and answers one JSON line per request:
{"results": [{"lists": [[name, value, ...], ...], "error": null or "ExceptionName: message"}, ...]}.
"""
import json
import sys

import hpack


def decode_case(blocks, max_list):
    decoder = hpack.Decoder(max_header_list_size=max_list)
    lists = []
    for block in blocks:
        try:
            fields = decoder.decode(block.encode("latin1"), raw=True)
        except Exception as err:  # every refusal is reported, whatever its class
            return {"lists": lists, "error": "%s: %s" % (type(err).__name__, err)}
        flat = []
        for name, value in fields:
            flat.append(name.decode("latin1"))
            flat.append(value.decode("latin1"))
        lists.append(flat)
    return {"lists": lists, "error": None}


def main():
    for line in sys.stdin:
        request = json.loads(line)
        max_list = request.get("maxHeaderListSize", 65536)
        results = [decode_case(case, max_list) for case in request["cases"]]
        sys.stdout.write(json.dumps({"results": results}) + "\n")
        sys.stdout.flush()


main()
