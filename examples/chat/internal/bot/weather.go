package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// WeatherClient asks an OpenWeatherMap-style HTTPS API for the current
// weather: GET <base>/data/2.5/weather?q=<city>&units=metric&appid=<key>,
// answered with {"name":..,"main":{"temp":..},"weather":[{"description":..}]}.
// The API lies outside the mesh; the caller decides how it is reached by
// the [http.Client] it gives.
type WeatherClient struct {
	base   *url.URL
	key    string
	client *http.Client
}

var _ Weatherer = (*WeatherClient)(nil)

// NewWeatherClient returns a client of the API at baseURL (https only:
// the API key travels in the request) with apiKey. client nil means one
// with a 10 s timeout and the default transport.
func NewWeatherClient(baseURL, apiKey string, client *http.Client) (*WeatherClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("weather API: base URL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("weather API: base URL %q is not an https URL", baseURL)
	}
	if apiKey == "" {
		return nil, errors.New("weather API: no API key")
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &WeatherClient{base: u, key: apiKey, client: client}, nil
}

type owmAnswer struct {
	Name string `json:"name"`
	Main *struct {
		Temp float64 `json:"temp"`
	} `json:"main"`
	Weather []struct {
		Description string `json:"description"`
	} `json:"weather"`
	Message string `json:"message"`
}

// Weather implements [Weatherer]. Its errors never contain the API key.
func (w *WeatherClient) Weather(ctx context.Context, city string) (Report, error) {
	u := w.base.JoinPath("data", "2.5", "weather")
	u.RawQuery = url.Values{"q": {city}, "units": {"metric"}, "appid": {w.key}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Report{}, fmt.Errorf("weather API: %w", w.redact(err))
	}
	req.Header.Set("Accept", "application/json")
	res, err := w.client.Do(req)
	if err != nil {
		// A *url.Error names the URL, key included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Report{}, fmt.Errorf("weather API: %w", w.redact(err))
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return Report{}, fmt.Errorf("weather API: read: %w", w.redact(err))
	}
	var a owmAnswer
	jsonErr := json.Unmarshal(body, &a)
	if res.StatusCode != http.StatusOK {
		msg := res.Status
		if jsonErr == nil && a.Message != "" {
			msg += ": " + a.Message
		}
		return Report{}, fmt.Errorf("weather API: %s", w.redact(errors.New(msg)))
	}
	if jsonErr != nil {
		return Report{}, fmt.Errorf("weather API: bad answer: %w", jsonErr)
	}
	if a.Main == nil {
		return Report{}, errors.New("weather API: answer without a temperature")
	}
	r := Report{City: a.Name, Celsius: a.Main.Temp}
	if r.City == "" {
		r.City = city
	}
	if len(a.Weather) > 0 {
		r.Description = a.Weather[0].Description
	}
	return r, nil
}

// redact removes the API key from an error's text, wherever it got in.
func (w *WeatherClient) redact(err error) error {
	if s := err.Error(); strings.Contains(s, w.key) || strings.Contains(s, url.QueryEscape(w.key)) {
		s = strings.ReplaceAll(s, w.key, "<key>")
		return errors.New(strings.ReplaceAll(s, url.QueryEscape(w.key), "<key>"))
	}
	return err
}
