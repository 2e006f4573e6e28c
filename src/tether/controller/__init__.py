"""The pull-mode controller: watches Applications and the objects they manage and reconciles them."""
