"""Devices, channels (SMS, push, webhook), inbox, reminders. Channels import no domain."""
