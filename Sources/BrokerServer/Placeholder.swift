enum BrokerServerPlaceholder {}
