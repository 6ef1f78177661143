package postgres

import "encoding/json"

// tagsParam passes tags as a text[]; none (nil or empty) as NULL, which the
// column stores for an untagged row and the list filters read as "any".
func tagsParam(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return tags
}

// tagsJSON passes one row's tags in a batch insert as a JSON array (SQL
// arrays of arrays must be rectangular); none as NULL.
func tagsJSON(tags []string) *string {
	if len(tags) == 0 {
		return nil
	}
	b, _ := json.Marshal(tags) // strings always encode
	s := string(b)
	return &s
}
