"""The live stream: the events, their wire format and replay, and the fan-out to Server-Sent-Events clients."""
