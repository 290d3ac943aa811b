"""The Wyoming protocol front-end (Home Assistant's local TTS): `autovoice serve --wyoming URI`.

A front-end over the daemon core's API (`autovoice.daemon.core.DaemonCore`); the core never
imports this package. Nothing is imported here, so the CLI's other commands do not load the
`wyoming` library: the server is `autovoice.daemon.wyoming.server.WyomingServer`, the `serve`
options are in `autovoice.daemon.wyoming.options`.
"""
