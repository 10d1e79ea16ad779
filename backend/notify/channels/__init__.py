"""Push channels: one small class per gateway behind `base.Channel`, all on one shared
`httpx.AsyncClient`, no vendor SDK. They import no domain module."""
