"""Call the bookshop's BookViewSet over RabbitMQ: `python examples/django/client.py`.

Needs no Django: any service with zc-events and the rabbitmq backend can call it.
"""

import os

import zc_events

# Broker URL: BROKER_URL or ZC_EVENTS_BACKEND_OPTIONS='{"url": ...}' (default: localhost).
zc_events.configure(backend=os.environ.get("ZC_EVENTS_BACKEND", "rabbitmq"), timeout=10)


def show(call: str, r: zc_events.Response) -> None:
    print(call)
    if r.has_errors:
        errors = [{k: v for k, v in e.items() if k != "trace"} for e in r.errors]
        print(f"    status={r.status} errors={errors}")
    else:
        print(f"    status={r.status} data={r.data}")


dune = {"title": "Dune", "author": "Frank Herbert", "year": 1965}
created = zc_events.post("books", data=dune)
show("post('books', data=dune)                      -> create", created)
pk = created.data["id"]
zc_events.post("books", data={"title": "Emma", "author": "Jane Austen", "year": 1815})

r = zc_events.get("books", headers={"pk": pk})
show("get('books', headers={'pk': pk})              -> retrieve", r)
r = zc_events.get("books", headers={"query_string": "author=Jane+Austen"})
show("get('books', headers={'query_string': ...})   -> list, filtered", r)
r = zc_events.patch("books", data={"year": 1966}, headers={"pk": pk})
show("patch('books', {'year': 1966}, {'pk': pk})    -> partial_update", r)
r = zc_events.post("books", data={"title": "Later", "year": 3000})
show("post('books', data={... 'year': 3000})        -> validation errors", r)
r = zc_events.delete("books", headers={"pk": pk})
show("delete('books', headers={'pk': pk})           -> destroy", r)
r = zc_events.get("books", headers={"pk": pk})
show("get('books', headers={'pk': pk})              -> not found", r)
