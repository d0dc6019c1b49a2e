"""The marketer's console: server-rendered pages at ``/`` beside the API (issue #18).

A thin shell like the API: pages read through the same services the API calls and every action
it offers exists in the API and the CLI too. Assets ship inside the package (``static/``), so it
works air-gapped (docs/console.md).
"""
