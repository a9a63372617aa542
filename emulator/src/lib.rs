//! entra-emulator: a local, stateful stand-in for Microsoft Entra ID (Graph + login).
