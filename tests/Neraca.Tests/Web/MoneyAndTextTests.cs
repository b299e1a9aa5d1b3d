using Neraca.Web.Text;

namespace Neraca.Tests.Web;

public sealed class MoneyAndTextTests
{
    [Theory]
    [InlineData(150_000_000L, 2, Language.Indonesian, "Rp 1.500.000")]
    [InlineData(150_000_050L, 2, Language.Indonesian, "Rp 1.500.000,50")]
    [InlineData(5L, 2, Language.Indonesian, "Rp 0,05")]
    [InlineData(0L, 2, Language.Indonesian, "Rp 0")]
    [InlineData(-25_050L, 2, Language.Indonesian, "-Rp 250,50")]
    [InlineData(150_000_000L, 2, Language.English, "IDR 1,500,000")]
    [InlineData(149_974_950L, 2, Language.English, "IDR 1,499,749.50")]
    [InlineData(1_500_000L, 0, Language.Indonesian, "Rp 1.500.000")]
    [InlineData(999L, 0, Language.English, "IDR 999")]
    public void Rupiah_amounts_follow_the_ledger_scale_and_the_readers_language(long minor, int scale, Language language, string expected) =>
        Assert.Equal(expected, Money.Format(minor, "IDR", scale, language));

    [Fact]
    public void Other_assets_show_their_code_and_the_extremes_of_a_long_do_not_overflow()
    {
        Assert.Equal("USD 12,345.67", Money.Format(1_234_567, "USD", 2, Language.English));
        Assert.Equal("JPY 1.000", Money.Format(1_000, "JPY", 0, Language.Indonesian));
        Assert.Equal("-IDR 92,233,720,368,547,758.08", Money.Format(long.MinValue, "IDR", 2, Language.English));
        Assert.Equal("Rp 9,223372036854775807", Money.Format(long.MaxValue, "IDR", 18, Language.Indonesian));
        Assert.Throws<ArgumentOutOfRangeException>(() => Money.Format(1, "IDR", -1, Language.English));
    }

    [Fact]
    public void Both_languages_have_every_text()
    {
        Assert.Empty(Texts.English.Keys.Except(Texts.Indonesian.Keys));
        Assert.Empty(Texts.Indonesian.Keys.Except(Texts.English.Keys));
        Assert.All(Texts.Indonesian, kv => Assert.False(string.IsNullOrWhiteSpace(kv.Value) && kv.Key != "area.none", kv.Key));
    }
}
