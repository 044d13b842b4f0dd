"""Campaign-list imports: reading CSV/XLSX files as people make them, and mapping their columns to lead fields."""
