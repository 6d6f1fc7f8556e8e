-- One database per service: services share nothing but Kafka topics.
CREATE DATABASE ingestor;
CREATE DATABASE notifier;
CREATE DATABASE map_api;
