"""Connect311 notifier: notification commands from Kafka to email over SMTP, each sent once."""
