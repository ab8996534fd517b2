"""The edge of the platform: how people and programs reach the services.

`app` builds the one-process app (every enabled service, health checks, request limits, the console); `gateway` routes
each path to its service in the distributed deployment and merges their OpenAPI documents; `console` is the officers'
web pages over the REST API; `cli` is the `smartgate` command. Nothing below this layer imports it
(docs/architecture.md).
"""
