"""DynamoDB persistence through PynamoDB. Table names come from settings, bound lazily."""
