"""Backend of the mobile end of the student registry (学籍) data-quality check."""
