"""What each platform's remote jobs mean (status tables, outcomes, failures), below operators, sensors and triggers."""
