"""The Piper voice catalogue: browsing it (`catalogue`), installing and removing its voices
(`install`), and the `autovoice voices` command (`cli`). Imports point one way: catalogue ->
engines (voice configs, the voices directory); nothing in engines or daemon imports it."""
