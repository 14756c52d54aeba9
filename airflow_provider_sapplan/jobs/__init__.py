"""What each platform's remote jobs mean: states, outcomes, results and failures (no HTTP of their own)."""
